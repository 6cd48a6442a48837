"""Benchmark: the cart calculator (SPEC F-ORD-2, F-RED-4) in-process and through the HTTP API under gunicorn.

A throw-away PostgreSQL database holds the scenario: a catalogue of 200 products in a category tree, 50 active rules
of the retail programme (25 earning rules with conditions on categories, channels, stores, tiers, operation types
and new arrivals; 15 redemption rules, among them the discount-bracket matrix and a prohibition; 10 promotions, 7 of
them in force), and a Gold member with a balance. The cart has 5 lines (4 catalogue products, 1 unknown SKU with
inline attributes), a store and points to redeem. Measured in one run:

  baseline       Customer.objects.get(pk=…): the cheapest query, to compare machines
  calculate      cart_calculate() in-process, one thread: p50/p99 and calculations per second
  validate       the request body through CartCalculateInput (what the view checks before calculating)
  serialise      the answer (cart_answer) rendered as JSON (what the view does after)
  api_inprocess  POST /api/v1/carts/calculate through Django's test client: the whole stack without HTTP
  http           the same POST over HTTP to gunicorn (production settings, 2 workers) at a fixed rate, open loop:
                 each request has a scheduled send time (every 1/rate s) and its latency counts from then, so a
                 server that falls behind is charged for the queue; `server` is the app's own duration from its
                 request log line (middleware to response), the rest is queueing, HTTP and the client

Goal (issue 5): p99 under 25 ms through the API at 100 requests/s on 2 cores.

    .venv/bin/python bench/cart.py [-n 2000] [--rate 100] [--duration 20] [--worker-class sync|gthread] [--threads 2]

Gunicorn runs the production settings against the throw-away database (DATABASE_URL), with persistent database
connections, the Redis cache for throttle counters (CACHE_URL; a local-memory cache if Redis is not answering),
JSON request logs (to a temporary file, read for the server-side durations) and DEBUG off. The default worker class
is sync, the one the Procfile deploys; see ``--worker-class``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # one log line per in-process request would dominate the timing

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.renderers import JSONRenderer  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _http import REDIS_URL, cpu_seconds, free_port, gunicorn_stop, percentile, redis_answers  # noqa: E402
from _rulebook import rulebook_create  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/v1/carts/calculate"
GOAL_P99_MS = 25.0
GOAL_RATE = 100

# --- the scenario --------------------------------------------------------------------------------------------


def scenario_create() -> dict:
    """Catalogue, stores, 50 rules, a Gold member with 50,000 points, and the channel with its key."""
    from customers.models import Customer
    from integrations.models import Channel
    from integrations.scopes import Scope
    from integrations.services.channels import api_key_issue, channel_create
    from points.services import points_accrue
    from programmes.services import purchase_record

    stores = rulebook_create()
    now = timezone.now()
    customer = Customer.objects.create(phone="+79160000001", name="Bench", membership="member", joined_at=now)
    purchase_record(customer=customer, amount="350000", occurred_at=now, source_type="bench", source_id="1")
    points_accrue(customer=customer, amount="50000", kind="manual", operation_key="bench-balance")
    channel = channel_create(
        code="bench-till",
        name="Bench till",
        kind=Channel.Kind.SHOWROOM_POS,
        scopes=[Scope.CARTS_CALCULATE],
        rate_limit="1000000/min",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "customer": customer,
        "channel": channel,
        "store": stores[0],
        "key": api_key_issue(channel=channel, name="bench").raw_key,
        "body": {
            "customer_id": customer.pk,
            "store": stores[0].code,
            "redeem": "1000",
            "lines": [
                {"sku": "SKU-0001", "quantity": "1", "price": "89990.00", "discount_percent": "25"},
                {"sku": "SKU-0002", "quantity": "4", "price": "12990.00"},
                {"sku": "SKU-0040", "quantity": "1", "price": "45000.00", "discount_percent": "35"},
                {"sku": "SKU-0008", "quantity": "1", "price": "2500.00", "operation_type": "paid_service"},
                {"sku": "UNKNOWN-1", "quantity": "2", "price": "1990.00", "discount_percent": "10",
                 "name": "Linen cushion", "category": "textiles"},
            ],
        },
    }  # fmt: skip


# --- measuring -----------------------------------------------------------------------------------------------


def timed(operation, count: int) -> list[float]:
    """Each call's duration in ms."""
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        operation()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def summary(durations: list[float]) -> dict:
    return {
        "p50": percentile(durations, 50),
        "p99": percentile(durations, 99),
        "mean": statistics.fmean(durations),
        "per_second": 1000 / statistics.fmean(durations),
    }


def in_process(scenario: dict, count: int) -> dict[str, dict]:
    from customers.models import Customer
    from programmes.api.serializers import CartCalculateInput, cart_answer
    from programmes.calculator import CartLine, cart_calculate

    customer, channel, store, body = scenario["customer"], scenario["channel"], scenario["store"], scenario["body"]
    cart = CartCalculateInput(data=body)
    assert cart.is_valid(), cart.errors
    cart = cart.validated_data
    lines = [CartLine(**line) for line in cart["lines"]]

    def calculate():
        return cart_calculate(
            customer=customer, lines=lines, channel=channel, store=store, redeem=cart["redeem"], first_order=None
        )

    result = calculate()  # loads the rulebook once

    def validate():
        assert CartCalculateInput(data=body).is_valid()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {scenario['key']}")

    def api():
        response = client.post(PATH, body, format="json")
        assert response.status_code == 200, response.content

    api()
    return {
        "baseline": summary(timed(lambda: Customer.objects.get(pk=customer.pk), count)),
        "calculate": summary(timed(calculate, count)),
        "validate": summary(timed(validate, count)),
        "serialise": summary(timed(lambda: JSONRenderer().render(cart_answer(result)), count)),
        "api_inprocess": summary(timed(api, count)),
    }


# --- gunicorn and the open-loop client ------------------------------------------------------------------------


def database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def gunicorn_start(port: int, worker_class: str, threads: int, log_file) -> subprocess.Popen:
    redis = redis_answers()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty_crm.settings.production",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "bench-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Only the throttle counters use the cache; a database of their own keeps them apart from a running app's.
        "CELERY_BROKER_URL": f"{REDIS_URL}/0" if redis else "memory://",
        "CACHE_URL": f"{REDIS_URL}/13" if redis else "locmemcache://bench",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "INFO",  # the request log line is part of a production request's cost
        "LOG_FORMAT": "json",
    }
    options = f"--bind 127.0.0.1:{port} --workers 2 --worker-class {worker_class} --threads {threads}"
    command = [sys.executable, "-m", "gunicorn", "loyalty_crm.wsgi", *options.split(), "--log-level", "warning"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> int:
    try:
        conn.request("POST", PATH, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        conn.close()  # reconnects on the next request
        return 0


def wait_until_serving(port: int, process: subprocess.Popen, body: bytes, headers: dict) -> None:
    deadline = time.monotonic() + 60
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited")
        if post(conn, body, headers) == 200:
            conn.close()
            return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer 200 within 60 s")


def open_loop(port: int, body: bytes, headers: dict, rate: float, duration: float, clients: int) -> dict:
    """Requests scheduled every 1/rate s from ``clients`` threads (each with a keep-alive connection where the
    server keeps it); a request's latency counts from its scheduled time, so waiting for a free client or server
    is charged to it."""
    total = int(rate * duration)
    interval = 1 / rate
    latencies: list[float | None] = [None] * total
    statuses: list[int] = [0] * total
    schedule = itertools.count()
    start = time.perf_counter() + 0.1
    finished: list[float] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while (index := next(schedule)) < total:
            scheduled = start + index * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            statuses[index] = post(conn, body, headers)
            latencies[index] = (time.perf_counter() - scheduled) * 1000
        conn.close()
        finished.append(time.perf_counter())

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    measured = [latency for latency in latencies if latency is not None]
    return {
        "sent": total,
        "errors": sum(1 for status in statuses if status != 200),
        "achieved_rate": total / (max(finished) - start),
        **summary(measured),
    }


def server_durations(log_path: str, offset: int) -> list[float]:
    """The app's own duration of each cart request (its JSON request log line) from ``offset`` of the log."""
    durations = []
    with open(log_path) as log:
        log.seek(offset)
        for line in log:
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("path") == PATH and "duration_ms" in record:
                durations.append(float(record["duration_ms"]))
    return durations


def server_pids(process: subprocess.Popen) -> tuple[list[int], list[int]]:
    """gunicorn's workers, and the PostgreSQL backends serving the throw-away database (theirs, once warm)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    connection.close()
    return [int(pid) for pid in children], backends


def over_http(scenario: dict, args: argparse.Namespace) -> dict:
    body = json.dumps(scenario["body"]).encode()
    headers = {"Authorization": f"Bearer {scenario['key']}", "Content-Type": "application/json"}
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="bench-cart-gunicorn-", suffix=".log") as log:
        process = gunicorn_start(port, args.worker_class, args.threads, log)
        try:
            wait_until_serving(port, process, body, headers)
            # Warm both workers (imports, the rulebook, database connections) before measuring.
            open_loop(port, body, headers, rate=args.rate, duration=2, clients=args.clients)
            offset = os.path.getsize(log.name)
            workers, backends = server_pids(process)
            cpu_before = cpu_seconds(workers), cpu_seconds(backends), time.process_time()
            result = open_loop(port, body, headers, rate=args.rate, duration=args.duration, clients=args.clients)
            cpu_after = cpu_seconds(workers), cpu_seconds(backends), time.process_time()
            time.sleep(0.2)
            server = server_durations(log.name, offset)
        except Exception:
            log.seek(0)
            print(log.read()[-4000:], file=sys.stderr)
            raise
        finally:
            gunicorn_stop(process)
    result["server"] = summary(server) if server else None
    result["server_count"] = len(server)
    # CPU per request, which other work on the machine barely changes: what the goal's 2 cores must supply.
    result["cpu_ms"] = [
        (after - before) * 1000 / result["sent"] for before, after in zip(cpu_before, cpu_after, strict=True)
    ]
    return result


# --- the run -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="in-process calls per measure")
    parser.add_argument("--rate", type=float, default=GOAL_RATE, help="HTTP requests per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of HTTP load")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--clients", type=int, default=8, help="client threads sending the scheduled requests")
    args = parser.parse_args()
    # A bench killed from outside still stops gunicorn and drops its database (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if not _has_gunicorn():
        sys.exit("gunicorn is not installed (requirements.txt)")

    setup_test_environment()
    # A name of its own: a bench must never clobber the database of a test run going on beside it.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_cart_{connection.settings_dict['NAME']}"
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        scenario = scenario_create()
        local = in_process(scenario, args.n)
        connection.close()  # gunicorn's workers bring their own connections
        remote = over_http(scenario, args)
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"database: {connection.vendor}; cores: {os.cpu_count()}; load average {load} (other work skews the figures)")
    print(f"5-line cart, 50 active rules; in-process n={args.n}")
    baseline = local["baseline"]["mean"]
    for label, figures in local.items():
        print(
            f"{label:<14} p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:6.2f} ms  "
            f"{figures['per_second']:8.0f}/s   ratio to baseline {figures['mean'] / baseline:6.2f}"
        )
    threads = f" x {args.threads} threads" if args.worker_class == "gthread" else ""
    print(
        f"http           gunicorn 2 {args.worker_class} workers{threads}, {args.rate:g} requests/s for "
        f"{args.duration:g} s ({args.clients} client threads, open loop)"
    )
    print(
        f"               p50 {remote['p50']:6.2f} ms  p99 {remote['p99']:6.2f} ms  "
        f"achieved {remote['achieved_rate']:.1f}/s  errors {remote['errors']}/{remote['sent']}   "
        f"ratio to baseline {remote['mean'] / baseline:6.2f}"
    )
    if remote["server"]:
        server = remote["server"]
        print(
            f"  server-side  p50 {server['p50']:6.2f} ms  p99 {server['p99']:6.2f} ms  "
            f"({remote['server_count']} request log lines; the rest is queueing, HTTP and the client)"
        )
    app, database, client = remote["cpu_ms"]
    print(
        f"  CPU/request  gunicorn {app:.2f} ms + PostgreSQL {database:.2f} ms (client {client:.2f} ms): "
        f"{(app + database) * args.rate / 1000:.2f} of 2 cores at {args.rate:g}/s"
    )
    met = remote["p99"] < GOAL_P99_MS and remote["errors"] == 0 and remote["achieved_rate"] >= 0.98 * args.rate
    verdict = "met" if met else "NOT met"
    print(f"goal p99 < {GOAL_P99_MS:g} ms at {GOAL_RATE} requests/s on 2 cores: {verdict} at {args.rate:g}/s")


def _has_gunicorn() -> bool:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
