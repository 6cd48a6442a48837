from django.urls import path

from orders.api.views import (
    CustomerOrdersApi,
    OrderCancellationCreateApi,
    OrderCustomerAttachApi,
    OrderDeliveryCreateApi,
    OrderDetailApi,
    OrderPaymentCreateApi,
    OrderPlaceApi,
    OrderReturnCreateApi,
)

# Order numbers are the channels' own and may hold slashes (a delivery's default number is `<order>/<n>`): the
# actions are matched before the order itself.
urlpatterns = [
    path("orders", OrderPlaceApi.as_view(), name="orders"),
    path("orders/<path:number>/deliveries", OrderDeliveryCreateApi.as_view(), name="order-deliveries"),
    path("orders/<path:number>/cancellations", OrderCancellationCreateApi.as_view(), name="order-cancellations"),
    path("orders/<path:number>/returns", OrderReturnCreateApi.as_view(), name="order-returns"),
    path("orders/<path:number>/payments", OrderPaymentCreateApi.as_view(), name="order-payments"),
    path("orders/<path:number>/customer", OrderCustomerAttachApi.as_view(), name="order-customer"),
    path("orders/<path:number>", OrderDetailApi.as_view(), name="order-detail"),
    path("customers/<int:customer_id>/orders", CustomerOrdersApi.as_view(), name="customer-orders"),
]
