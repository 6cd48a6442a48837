"""Benchmark: customer identification at the till, SMS registration and merge, on PostgreSQL.

A throw-away database with M customers (default 100,000; bulk-inserted). Scenarios, N operations each:
  baseline      Customer.objects.get(pk=…)                       the cheapest possible lookup
  identify      customer_identify(phone="8 (916) …")             normalise + indexed lookup + redirect
  identify_api  GET /api/v1/customers/identify?phone=…           the till's one call: auth, scopes, profile, balance
  register      sms_code_request + sms_code_confirm              a walk-in joins: code, customer, welcome bonus
  merge         customer_merge of a duplicate with 10 lots       points move through the journal
Prints ms/op and each scenario's ratio to the baseline measured in the same run.

    .venv/bin/python bench/customers.py [N] [M]
"""

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
M = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000


def timed(operation, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        operation(index)
    return (time.perf_counter() - started) * 1000 / count


def national(index: int) -> str:
    digits = f"{index:07d}"
    return f"8 (916) {digits[:3]}-{digits[3:5]}-{digits[5:]}"


def main() -> None:
    from core.actors import Actor
    from customers.models import Customer
    from customers.selectors import customer_identify
    from customers.services import customer_merge, sms_code_confirm, sms_code_request
    from integrations import sms
    from integrations.scopes import ALL_SCOPES
    from integrations.services.channels import api_key_issue, channel_create
    from points.services import points_accrue

    setup_test_environment()
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        now = timezone.now()
        for start in range(0, M, 10_000):
            Customer.objects.bulk_create(
                Customer(phone=f"+7916{i:07d}", name=f"Customer {i}", membership="member", joined_at=now)
                for i in range(start, min(start + 10_000, M))
            )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_customer")
        channel = channel_create(
            code="bench", name="Bench", kind="site", scopes=sorted(ALL_SCOPES), rate_limit="1000000/min"
        )
        actor = Actor(channel=channel)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(channel=channel, name='b').raw_key}")
        picks = [random.Random(i).randrange(M) for i in range(N)]
        pks = dict(Customer.objects.values_list("phone", "pk"))

        def identify_api(i: int) -> None:
            response = client.get("/api/v1/customers/identify", {"phone": national(picks[i])})
            assert response.status_code == 200, response.content

        def register(i: int) -> None:
            phone = f"+7903{i:07d}"
            sms_code_request(phone=phone, actor=actor)
            code = "".join(ch for ch in sms.outbox[-1].text.split(".")[0] if ch.isdigit())
            assert sms_code_confirm(phone=phone, code=code, actor=actor).joined

        duplicates = []
        for i in range(N):
            duplicate = Customer.objects.create(phone=f"+7925{i:07d}", membership="member", joined_at=now)
            for lot in range(10):
                points_accrue(customer=duplicate, amount=100, kind="purchase", operation_key=f"bench:{i}:{lot}")
            duplicates.append(duplicate)

        def merge(i: int) -> None:
            survivor = Customer(pk=pks[f"+7916{picks[i]:07d}"])
            customer_merge(duplicate=duplicates[i], survivor=survivor, actor=actor, reason="bench")

        results = {
            "baseline": timed(lambda i: Customer.objects.get(pk=pks[f"+7916{picks[i]:07d}"]), N),
            "identify": timed(lambda i: customer_identify(phone=national(picks[i])), N),
            "identify_api": timed(identify_api, N),
            "register": timed(register, N),
            "merge": timed(merge, N),
        }
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)

    print(f"database: {connection.vendor}, customers M={M}, N={N}")
    for label, per_op in results.items():
        print(f"{label:<13} {per_op:7.3f} ms/op   ratio to baseline {per_op / results['baseline']:6.2f}")


if __name__ == "__main__":
    main()
