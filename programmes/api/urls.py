from django.urls import path

from programmes.api.views import CustomerTierApi

urlpatterns = [
    path("customers/<int:customer_id>/tier", CustomerTierApi.as_view(), name="customer-tier"),
]
