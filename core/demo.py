"""Demo data for ``make run``: a few channels and customers. Re-running changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction

from customers.models import Customer
from customers.services import customer_create, customer_join
from integrations.models import ApiKey, Channel
from integrations.scopes import ALL_SCOPES, Scope
from integrations.services.channels import api_key_hash, api_key_issue, channel_create

DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_PASSWORD = "admin"  # local demo only; the command refuses to run with DEBUG off
# A fixed key so the README's curl examples work on every fresh demo database.
DEMO_SITE_API_KEY = "lcrm_demo_site_key_local_only"

DEMO_CHANNELS = [
    ("demo-site", "Demo web site", Channel.Kind.SITE, sorted(ALL_SCOPES)),
    (
        "demo-showroom",
        "Demo showroom till",
        Channel.Kind.SHOWROOM_POS,
        [Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE, Scope.POINTS_READ, Scope.POINTS_WRITE, Scope.ORDERS_WRITE],
    ),
    (
        "demo-erp",
        "Demo ERP",
        Channel.Kind.ERP,
        [Scope.CUSTOMERS_READ, Scope.ORDERS_READ, Scope.ORDERS_WRITE, Scope.CATALOG_WRITE],
    ),
]
DEMO_CUSTOMERS = [
    ("+79161234567", "Anna Petrova", True),
    ("+79031112233", "Ivan Sidorov", True),
    ("+79265554433", "Olga Smirnova", True),
    ("+79998887766", "", False),  # a non-member seen on a receipt
]


@dataclass
class DemoSummary:
    created: list[str] = field(default_factory=list)


@transaction.atomic
def demo_data_load() -> DemoSummary:
    summary = DemoSummary()
    user_model = get_user_model()
    if not user_model.objects.filter(username=DEMO_ADMIN_USERNAME).exists():
        user_model.objects.create_superuser(DEMO_ADMIN_USERNAME, "admin@example.com", DEMO_ADMIN_PASSWORD)
        summary.created.append(f"superuser {DEMO_ADMIN_USERNAME}")
    for code, name, kind, scopes in DEMO_CHANNELS:
        if not Channel.objects.filter(code=code).exists():
            channel_create(code=code, name=name, kind=kind, scopes=[str(scope) for scope in scopes])
            summary.created.append(f"channel {code}")
    if not ApiKey.objects.filter(key_hash=api_key_hash(DEMO_SITE_API_KEY)).exists():
        api_key_issue(channel=Channel.objects.get(code="demo-site"), name="demo", raw_key=DEMO_SITE_API_KEY)
        summary.created.append("demo site API key")
    for phone, name, member in DEMO_CUSTOMERS:
        if not Customer.objects.filter(phone=phone).exists():
            customer = customer_create(phone=phone, name=name)
            if member:
                customer_join(customer=customer)
            summary.created.append(f"customer {phone}")
    return summary
