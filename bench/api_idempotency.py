"""Benchmark: the cost of the Idempotency-Key layer on a channel write, on PostgreSQL.

Scenarios, each N operations in one run on a throw-away database:
  baseline   customer_create() called directly (the service alone)
  api_write  POST /api/v1/customers with a fresh Idempotency-Key (auth, scopes, throttle, key claim,
             service, stored answer)
  api_replay the same POSTs again: every one is answered from the stored key
Prints ms/op and each scenario's ratio to the baseline measured in the same run.

    .venv/bin/python bench/api_idempotency.py [N]
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # one log line per request would dominate the timing

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500


def timed(operation, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        operation(index)
    per_op_ms = (time.perf_counter() - started) * 1000 / count
    return per_op_ms


def main() -> None:
    from customers.services import customer_create
    from integrations.scopes import ALL_SCOPES
    from integrations.services.channels import api_key_issue, channel_create

    setup_test_environment()
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        channel = channel_create(
            code="bench", name="Bench", kind="site", scopes=sorted(ALL_SCOPES), rate_limit="1000000/min"
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(channel=channel, name='b').raw_key}")

        def post(index: int):
            response = client.post(
                "/api/v1/customers", {"phone": f"+7903{index:07d}"}, format="json", HTTP_IDEMPOTENCY_KEY=f"k{index}"
            )
            assert response.status_code == 201, response.content

        results = {
            "baseline": timed(lambda i: customer_create(phone=f"+7916{i:07d}"), N),
            "api_write": timed(post, N),
            "api_replay": timed(post, N),
        }
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)

    print(f"database: {connection.vendor}, N={N}")
    for label, per_op in results.items():
        print(f"{label:<11} {per_op:7.3f} ms/op   ratio to baseline {per_op / results['baseline']:5.2f}")


if __name__ == "__main__":
    main()
