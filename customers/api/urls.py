from django.urls import path

from customers.api.views import CustomerDetailApi, CustomerListCreateApi

urlpatterns = [
    path("customers", CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<int:customer_id>", CustomerDetailApi.as_view(), name="customer-detail"),
]
