from django.urls import path

from customers.api.views import (
    CustomerAccountApi,
    CustomerConsentsApi,
    CustomerDetailApi,
    CustomerIdentifyApi,
    CustomerListCreateApi,
    CustomerMergeApi,
    EmailValidationConfirmApi,
    EmailValidationRequestApi,
    SmsCodeConfirmApi,
    SmsCodeRequestApi,
)

urlpatterns = [
    path("customers", CustomerListCreateApi.as_view(), name="customers"),
    path("customers/identify", CustomerIdentifyApi.as_view(), name="customers-identify"),
    path("customers/sms-codes", SmsCodeRequestApi.as_view(), name="customers-sms-codes"),
    path("customers/sms-codes/confirm", SmsCodeConfirmApi.as_view(), name="customers-sms-code-confirm"),
    path(
        "customers/email-validation/confirm",
        EmailValidationConfirmApi.as_view(),
        name="customers-email-validation-confirm",
    ),
    path("customers/<int:customer_id>", CustomerDetailApi.as_view(), name="customer-detail"),
    path("customers/<int:customer_id>/account", CustomerAccountApi.as_view(), name="customer-account"),
    path("customers/<int:customer_id>/consents", CustomerConsentsApi.as_view(), name="customer-consents"),
    path(
        "customers/<int:customer_id>/email-validation",
        EmailValidationRequestApi.as_view(),
        name="customer-email-validation",
    ),
    path("customers/<int:customer_id>/merge", CustomerMergeApi.as_view(), name="customer-merge"),
]
