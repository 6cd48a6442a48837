"""The till screen under ``/admin/till/`` (included before the admin's own URLs)."""

from django.contrib import admin
from django.urls import path

from staff.till import views

app_name = "staff_till"

urlpatterns = [
    path("", views.page_view, name="page"),
    path("store/", views.store_view, name="store"),
    path("search/", views.search_view, name="search"),
    path("customer/clear/", views.customer_clear_view, name="customer_clear"),
    path("register/request/", views.register_request_view, name="register_request"),
    path("register/confirm/", views.register_confirm_view, name="register_confirm"),
    path("cart/add/", views.line_add_view, name="line_add"),
    path("cart/remove/", views.line_remove_view, name="line_remove"),
    path("cart/redeem/", views.redeem_view, name="redeem"),
    path("place/", views.place_view, name="place"),
    path("new/", views.new_sale_view, name="new_sale"),
]

# The admin index links to the till for holders of ``staff.use_till`` (the template extends the admin's own).
if admin.site.index_template is None:
    admin.site.index_template = "staff/till/admin_index.html"
