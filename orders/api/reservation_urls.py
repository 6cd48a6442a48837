from django.urls import path

from orders.api.reservations import CustomerReservationsApi, ReservationCancelApi, ReservationFulfilApi

urlpatterns = [
    path("customers/<int:customer_id>/reservations", CustomerReservationsApi.as_view(), name="customer-reservations"),
    path("reservations/<str:number>/cancel", ReservationCancelApi.as_view(), name="reservation-cancel"),
    path("reservations/<str:number>/fulfil", ReservationFulfilApi.as_view(), name="reservation-fulfil"),
]
