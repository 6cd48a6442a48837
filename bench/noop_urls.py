"""Bench-only WSGI entry and URLconf: the app's own URLs plus a no-op channel endpoint, the ceiling of the HTTP
benchmarks (bench/orders.py). Production code stays untouched: gunicorn serves ``bench.noop_urls:application``,
which is the app's WSGI application with ``ROOT_URLCONF`` pointed at this module.

POST /api/v1/bench/noop goes through everything every channel call goes through — the middleware stack and its
request log line, API-key authentication, the scope check (``carts:calculate``), the channel's throttle (the
shared cache) and JSON parsing and rendering — and does nothing else: it answers ``{}``.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.production")

from django.conf import settings
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()  # django.setup(); URLs are resolved lazily, at the first request
settings.ROOT_URLCONF = __name__

from django.urls import path  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from integrations.scopes import Scope  # noqa: E402
from loyalty_crm.urls import handler404, handler500  # noqa: E402, F401 (the error views, as the app has them)
from loyalty_crm.urls import urlpatterns as app_urlpatterns  # noqa: E402

NOOP_PATH = "/api/v1/bench/noop"


class BenchNoopApi(APIView):
    """Authenticated, scope-checked, throttled; reads the JSON body and answers ``{}``."""

    required_scopes = {"POST": Scope.CARTS_CALCULATE}

    def post(self, request: Request) -> Response:
        request.data  # noqa: B018 — parse the body, as every real endpoint does
        return Response({})


urlpatterns = [path(NOOP_PATH.lstrip("/"), BenchNoopApi.as_view(), name="bench-noop"), *app_urlpatterns]
