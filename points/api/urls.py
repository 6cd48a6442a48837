from django.urls import path

from points.api.views import (
    PointsAdjustmentCreateApi,
    PointsBalanceApi,
    PointsHistoryApi,
    PointsHoldCommitApi,
    PointsHoldCreateApi,
    PointsHoldReleaseApi,
)

urlpatterns = [
    path("customers/<int:customer_id>/points", PointsBalanceApi.as_view(), name="points-balance"),
    path("customers/<int:customer_id>/points/history", PointsHistoryApi.as_view(), name="points-history"),
    path("customers/<int:customer_id>/points/holds", PointsHoldCreateApi.as_view(), name="points-holds"),
    path("points/holds/<int:hold_id>/commit", PointsHoldCommitApi.as_view(), name="points-hold-commit"),
    path("points/holds/<int:hold_id>/release", PointsHoldReleaseApi.as_view(), name="points-hold-release"),
    path(
        "customers/<int:customer_id>/points/adjustments",
        PointsAdjustmentCreateApi.as_view(),
        name="points-adjustments",
    ),
]
