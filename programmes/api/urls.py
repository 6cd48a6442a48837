from django.urls import path

from programmes.api.views import CartCalculateApi, CustomerTierApi

urlpatterns = [
    path("customers/<int:customer_id>/tier", CustomerTierApi.as_view(), name="customer-tier"),
    path("carts/calculate", CartCalculateApi.as_view(), name="cart-calculate"),
]
