from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.views import healthz

admin.site.site_header = _("Loyalty CRM")
admin.site.site_title = _("Loyalty CRM")
admin.site.index_title = _("Loyalty programme administration")

api_v1 = [
    path("", include("integrations.api.urls")),
    path("", include("customers.api.urls")),
    path("", include("points.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("programmes.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("orders.api.reservation_urls")),
]

urlpatterns = [
    path("admin/till/", include("staff.till.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
]

handler404 = "core.views.handler404"
handler500 = "core.views.handler500"
