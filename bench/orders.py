"""Benchmark: orders over HTTP (issue 6) — gunicorn under the production settings against PostgreSQL, loaded by
wrk (Lua scripts in bench/orders_lua/), 8 concurrent connections, every scenario in one run against one server:

  noop        POST /api/v1/bench/noop: authentication, scope check, throttle, JSON in and out, nothing else —
              the ceiling (a bench-only endpoint: gunicorn serves bench.noop_urls, the app's URLs plus this one)
  cart        POST /api/v1/carts/calculate (5-line cart, 50 active rules, a different member each time)
  hold_commit POST /customers/{id}/points/holds then POST /points/holds/{id}/commit (a redemption in 2 calls)
  place       POST /orders with "redeem": placing a 5-line order paid partly with points (a redemption in 1 call)
  lifecycle   calculate -> place with redemption (passing the calculation) -> 3 deliveries -> 1 partial return

Closed loop: each of the 8 connections sends its next request as soon as the previous answer is in, so the
figures are the server's throughput at saturation and the latency that 8 busy clients see (queueing for a
worker included). Latency per call kind is timed in the Lua script (wall clock, per request); wrk's own
aggregate and the app's request-log durations (server side, without queueing and HTTP) are reported beside it.

Goals (issue 6): redemption >= 500 requests/s with p99 <= 30 ms; cart calculation p99 <= 25 ms; every call of
the lifecycle p99 <= 50 ms.

    .venv/bin/python bench/orders.py [--duration 20] [--workers 3] [--worker-class sync|gthread] [--threads 1]
        [--only noop,cart,hold_commit,place,lifecycle] [--customers 2000] [--keep-database] [--json out.json]

Needs wrk (Debian: apt-get install wrk) and PostgreSQL; the throw-away database loyalty_crm_bench_orders is
created (migrated), filled and dropped by the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_crm.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from _http import (  # noqa: E402
    cpu_seconds,
    database_backends,
    database_url,
    free_port,
    gunicorn_start,
    gunicorn_stop,
    gunicorn_workers,
    redis_answers,
    request_log,
    summary,
    wait_until_serving,
)
from _rulebook import rulebook_create  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "orders_lua" / "scenarios.lua"
APP = "bench.noop_urls:application"
NOOP_PATH = "/api/v1/bench/noop"
SCENARIOS = ["noop", "cart", "hold_commit", "place", "lifecycle"]
KINDS = {  # call kinds of each scenario, in order
    "noop": ["noop"],
    "cart": ["calculate"],
    "hold_commit": ["hold", "commit"],
    "place": ["place"],
    "lifecycle": ["calculate", "place", "deliver", "return"],
}
CYCLE = {"hold_commit": "redemptions", "lifecycle": "lifecycles"}
# The request log's path -> call kind.
PATHS = [
    (re.compile(r"^/api/v1/bench/noop$"), "noop"),
    (re.compile(r"^/api/v1/carts/calculate$"), "calculate"),
    (re.compile(r"^/api/v1/customers/\d+/points/holds$"), "hold"),
    (re.compile(r"^/api/v1/points/holds/\d+/commit$"), "commit"),
    (re.compile(r"^/api/v1/orders$"), "place"),
    (re.compile(r"^/api/v1/orders/[^/]+/deliveries$"), "deliver"),
    (re.compile(r"^/api/v1/orders/[^/]+/returns$"), "return"),
]
# Goals (issue 6): p99 per call kind in ms, and requests/s of the scenario.
GOAL_P99 = {"cart": 25.0, "hold_commit": 30.0, "place": 30.0, "lifecycle": 50.0}
GOAL_RATE = {"hold_commit": 500.0, "place": 500.0}

# --- the scenario --------------------------------------------------------------------------------------------


def scenario_create(args: argparse.Namespace) -> dict:
    """The rulebook; ``--customers`` members with 10 active lots of 1,000-5,000 points each (about 30,000 points:
    points_bulk_generate, with the journal rows a real accrual writes); the channel and its API key."""
    from customers.models import Customer
    from integrations.models import Channel
    from integrations.scopes import Scope
    from integrations.services.channels import api_key_issue, channel_create

    stores = rulebook_create()
    call_command(
        "points_bulk_generate",
        accounts=args.customers,
        lots_per_account=10,
        due_fraction=0.0,
        min_amount=1000,
        max_amount=5000,
        stdout=StringIO(),
        stderr=StringIO(),
    )
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == args.customers, "another customer in the database"
    assert ids[-1] - ids[0] + 1 == len(ids), "customer ids are not contiguous"
    channel = channel_create(
        code="bench-till",
        name="Bench till",
        kind=Channel.Kind.SHOWROOM_POS,
        scopes=[Scope.CARTS_CALCULATE, Scope.POINTS_WRITE, Scope.ORDERS_READ, Scope.ORDERS_WRITE],
        rate_limit=args.rate_limit,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "first_customer": ids[0],
        "customers": len(ids),
        "store": stores[0].code,
        "key": api_key_issue(channel=channel, name="bench").raw_key,
    }


# --- one scenario under wrk ---------------------------------------------------------------------------------


def wrk(
    port: int,
    scenario_name: str,
    scenario: dict,
    args: argparse.Namespace,
    seconds: float,
    run: str,
    before_attempt=lambda: None,
) -> dict:
    with tempfile.NamedTemporaryFile(prefix="bench-orders-wrk-", suffix=".json", delete=False) as out:
        out_path = out.name
    lua_args = [
        f"scenario={scenario_name}",
        f"key={scenario['key']}",
        f"first={scenario['first_customer']}",
        f"count={scenario['customers']}",
        f"threads={args.connections}",
        f"run={run}",
        f"store={scenario['store']}",
        f"redeem={args.redeem}",
        f"hold={args.hold}",
    ]
    command = [
        "wrk",
        f"-t{args.connections}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        *lua_args,
    ]
    first_command = command
    try:
        for attempt in range(3):
            if attempt:  # a new run id: the earlier attempts' idempotency keys and order numbers are taken
                command = [f"run={run}r{attempt}" if arg == f"run={run}" else arg for arg in first_command]
            before_attempt()  # the phase's CPU and log are counted from the attempt that completes
            completed = subprocess.run(
                command, env={**os.environ, "BENCH_OUT": out_path}, capture_output=True, text=True, check=False
            )
            if completed.returncode >= 0:
                break
            # Debian's wrk 4.1 (LuaJIT) now and then dies of SIGSEGV at exit, after the load; run the phase again.
            print(f"wrk died of signal {-completed.returncode}; running the phase again", file=sys.stderr)
        if completed.returncode != 0:
            raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
        with open(out_path) as result:
            report = json.load(result)
    finally:
        os.unlink(out_path)
    shown = [arg if not arg.startswith("key=") else "key=<api key>" for arg in command]
    report["command"] = " ".join(shown).replace(str(ROOT) + "/", "")
    report["stdout"] = completed.stdout
    return report


def measure(port: int, process: subprocess.Popen, log_path: str, name: str, scenario: dict, args) -> dict:
    run = f"{os.getpid()}{name[:2]}"
    wrk(port, name, scenario, args, args.warmup, run + "w")  # every worker warm on these code paths
    # The tables the load fills (orders, idempotency keys, holds) were analysed empty. A prepared statement planned
    # against an empty table keeps its generic plan, a sequential scan, for the connection's life, unless new
    # statistics invalidate it: in production autovacuum analyses a table that grows like this within a minute (and
    # its tables are not empty); a 20 s phase is over before autovacuum's first look. So the phase starts as it would.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    workers, backends = gunicorn_workers(process), database_backends(connection)
    spy = pyspy_start(args.py_spy, process.pid, args.duration - 1) if args.py_spy else None
    start = {}

    def before_attempt() -> None:
        start["offset"] = os.path.getsize(log_path)
        start["cpu"] = cpu_seconds(workers), cpu_seconds(backends), _children_cpu()

    report = wrk(port, name, scenario, args, args.duration, run, before_attempt)
    offset, cpu_before = start["offset"], start["cpu"]
    cpu_after = cpu_seconds(workers), cpu_seconds(backends), _children_cpu()
    profile = pyspy_summary(*spy) if spy else None
    time.sleep(0.3)  # the last log lines
    server = defaultdict(list)
    for record in request_log(log_path, offset):
        for pattern, kind in PATHS:
            if pattern.match(record.get("path", "")):
                server[kind].append(float(record["duration_ms"]))
                break

    seconds = report["duration_us"] / 1e6
    samples, statuses, resent, failures, cycles = defaultdict(list), defaultdict(Counter), Counter(), [], 0
    for thread in report["threads"]:
        for kind, value in zip(thread["sample_kind"] or [], thread["sample_ms"] or [], strict=True):
            samples[kind].append(value)
        for key, count in (thread["statuses"] or {}).items():
            kind, status = key.rsplit(":", 1)
            statuses[kind][int(status)] += count
        resent.update(thread["resent"] or {})
        failures.extend(json.loads(failure) for failure in thread["failures"] or [])
        cycles += thread["cycles"] or 0
    total = sum(len(values) for values in samples.values())
    kinds = {
        kind: {
            "per_second": len(samples[kind]) / seconds,
            **summary(samples[kind]),
            "statuses": dict(statuses[kind]),
            "resent": resent.get(kind, 0),
            "server": summary(server[kind]) if server.get(kind) else None,
        }
        for kind in KINDS[name]
        if samples.get(kind)
    }
    return {
        "seconds": seconds,
        "requests": total,
        "per_second": total / seconds,
        "cycles": cycles,
        "cycles_per_second": cycles / seconds,
        "kinds": kinds,
        "all": summary([value for values in samples.values() for value in values]),
        "wrk": {
            "requests": report["requests"],
            "errors": report["errors"],
            "p50": report["latency_us"]["p50"] / 1000,
            "p99": report["latency_us"]["p99"] / 1000,
        },
        "failures": failures,
        "cpu_ms": [
            (after - before) * 1000 / max(total, 1) for before, after in zip(cpu_before, cpu_after, strict=True)
        ],
        "command": report["command"],
        "profile": profile,
    }


# --- where the time goes: py-spy (optional, --py-spy) ----------------------------------------------------------

APP_PACKAGES = {"core", "integrations", "customers", "points", "catalog", "programmes", "orders", "loyalty_crm"}
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def pyspy_start(pyspy: str, pid: int, seconds: float) -> tuple[subprocess.Popen, str]:
    """py-spy sampling gunicorn's workers (100 Hz, without pausing them) for ``seconds``."""
    with tempfile.NamedTemporaryFile(prefix="bench-orders-pyspy-", suffix=".txt", delete=False) as file:
        out = file.name
    command = [pyspy, "record", "-p", str(pid), "--subprocesses", "--nonblocking", "-r", "100"]
    command += ["-d", str(max(1, int(seconds))), "-f", "raw", "-o", out]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def _frame(text: str) -> tuple[str, str]:
    match = FRAME.match(text)
    return (match["function"], match["file"]) if match else (text, "")


def _leaf_category(file: str) -> str:
    top = file.split("/", 1)[0]
    if top == "psycopg":
        return "PostgreSQL: send, wait for the answer (its CPU, commits' fsync)"
    if top == "redis":
        return "Redis: the throttle's counters"
    if file.startswith("django/db/"):
        return "Django ORM: building queries, making objects"
    if top in {"django", "rest_framework"}:
        return "Django and DRF: request, views, serializers"
    if top in APP_PACKAGES:
        return "app code (own frames)"
    if top in {"json", "logging", "pythonjsonlogger"} or file.startswith("json/"):
        return "logging, JSON"
    return "other: stdlib, gunicorn, decimal, signing"


def pyspy_summary(spy: subprocess.Popen, path: str) -> dict:
    """Of the samples taken inside a request (below Django's WSGI handler): where the innermost frame was, and
    the app's own functions by inclusive share."""
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    leaves, inclusive, total = Counter(), Counter(), 0
    try:
        with open(path) as raw:
            for line in raw:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                frames = [_frame(text) for text in stack.split(";") if not text.startswith("process ")]
                if not any(function == "WSGIHandler.__call__" for function, _file in frames):
                    continue  # a worker waiting for a request, or the master
                samples = int(count)
                total += samples
                leaves[_leaf_category(frames[-1][1])] += samples
                seen = set()
                for function, file in frames:
                    if file.split("/", 1)[0] in APP_PACKAGES and (function, file) not in seen:
                        seen.add((function, file))
                        inclusive[f"{function} ({file})"] += samples
    finally:
        os.unlink(path)
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "leaves": {name: count / total for name, count in leaves.most_common()},
        "inclusive": {name: count / total for name, count in inclusive.most_common(25)},
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
    return usage.ru_utime + usage.ru_stime


# --- the run -------------------------------------------------------------------------------------------------


def run_all(args: argparse.Namespace, scenario: dict, names: list[str]) -> dict:
    key = scenario["key"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    port = free_port()
    results = {}
    with tempfile.NamedTemporaryFile("w+", prefix="bench-orders-gunicorn-", suffix=".log") as log:
        process = gunicorn_start(
            app=APP,
            port=port,
            database=database_url(connection.settings_dict),
            workers=args.workers,
            worker_class=args.worker_class,
            threads=args.threads,
            log_file=log,
        )
        try:
            wait_until_serving(port, process, NOOP_PATH, b"{}", headers)
            for name in names:
                results[name] = measure(port, process, log.name, name, scenario, args)
                print(f"  {name}: {results[name]['per_second']:.0f} requests/s", file=sys.stderr)
        except Exception:
            log.seek(0)
            print(log.read()[-4000:], file=sys.stderr)
            raise
        finally:
            gunicorn_stop(process)
        log.seek(0)
        errors = [line for line in log if '"level": "ERROR"' in line or "Traceback" in line]
        if errors:
            print(f"gunicorn log: {len(errors)} error lines, the first: {errors[0][:2000]}", file=sys.stderr)
    return results


def check_ledger() -> tuple[int, int]:
    """points_reconcile over the whole ledger after the load, and the orders placed."""
    from orders.models import Order
    from points.services import points_reconcile

    problems = points_reconcile()
    orders = Order.objects.count()
    connection.close()
    return len(problems), orders


def report(args: argparse.Namespace, results: dict, ledger: tuple[int, int]) -> None:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    threads = f" x {args.threads} threads" if args.worker_class == "gthread" else ""
    print(
        f"gunicorn {args.workers} {args.worker_class} workers{threads}, production settings, PostgreSQL; wrk "
        f"-t{args.connections} -c{args.connections}, {args.duration:g} s per scenario after {args.warmup:g} s of "
        f"warm-up; {args.customers} customers; cores {os.cpu_count()}; load average {load}"
    )
    ceiling = results["noop"]["per_second"] if "noop" in results else None
    header = (
        f"{'scenario':<12} {'call':<10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'srv p99':>7} "
        f"{'ratio':>6}  goal"
    )
    print(header)
    print("-" * len(header))
    for name, result in results.items():
        goal_p99, goal_rate = GOAL_P99.get(name), GOAL_RATE.get(name)
        for kind, figures in result["kinds"].items():
            unexpected = sum(count for status, count in figures["statuses"].items() if status != _expected(name, kind))
            met = ""
            if goal_p99 is not None:
                ok = figures["p99"] <= goal_p99 and unexpected == 0
                met = f"p99 <= {goal_p99:g}: {'met' if ok else 'MISSED'}"
            if unexpected:
                met += f"  {unexpected} unexpected statuses {figures['statuses']}"
            server = figures["server"]["p99"] if figures["server"] else float("nan")
            ratio = f"{figures['per_second'] / ceiling:6.2f}" if ceiling else "     -"
            print(
                f"{name:<12} {kind:<10} {figures['per_second']:7.0f} {figures['p50']:7.2f} {figures['p99']:7.2f} "
                f"{figures['max']:7.1f} {server:7.2f} {ratio}  {met}"
            )
        if len(result["kinds"]) > 1 or goal_rate is not None:
            ratio = f"{result['per_second'] / ceiling:6.2f}" if ceiling else "     -"
            met = ""
            if goal_rate is not None:
                met = f">= {goal_rate:g} req/s: {'met' if result['per_second'] >= goal_rate else 'MISSED'}"
            print(
                f"{name:<12} {'(all)':<10} {result['per_second']:7.0f} {result['all']['p50']:7.2f} "
                f"{result['all']['p99']:7.2f} {result['all']['max']:7.1f} {'':>7} {ratio}  {met}"
            )
        if name in CYCLE:
            print(f"{'':<12} {CYCLE[name] + '/s':<18} {result['cycles_per_second']:7.1f}")
    print()
    for name, result in results.items():
        app, database, client = result["cpu_ms"]
        errors = {key: value for key, value in result["wrk"]["errors"].items() if value}
        print(
            f"{name:<12} CPU/request: gunicorn {app:.2f} ms + PostgreSQL {database:.2f} ms + wrk {client:.3f} ms; "
            f"wrk aggregate p50 {result['wrk']['p50']:.2f} ms p99 {result['wrk']['p99']:.2f} ms, "
            f"{result['wrk']['requests']} requests, socket/status errors {errors or 'none'}"
        )
    for name, result in results.items():
        for failure in result["failures"][:3]:
            print(f"\n{name}: unexpected {failure['status']} on {failure['kind']}")
            print("  request:  " + failure["request"].replace("\r\n", "\n            ")[:1500])
            print("  response: " + failure["response"][:1500])
    for name, result in results.items():
        profile = result.get("profile")
        if not profile or not profile.get("samples"):
            continue
        print(f"\n{name}: py-spy, {profile['samples']} samples inside requests; innermost frame:")
        for category, share in profile["leaves"].items():
            print(f"  {100 * share:5.1f}%  {category}")
        print("  the app's functions, inclusive:")
        for function, share in profile["inclusive"].items():
            print(f"  {100 * share:5.1f}%  {function}")
    problems, orders = ledger
    print(f"\nafter the load: {orders} orders; points_reconcile: {problems or 'no'} discrepancies")


def _expected(name: str, kind: str) -> int:
    return {"hold": 201, "place": 201, "deliver": 201}.get(kind, 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds of load per scenario")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of the same load before each, not measured")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (one wrk thread each)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--redeem", default="1000", help="points redeemed per order")
    parser.add_argument("--hold", default="300", help="points held (then committed) per redemption")
    parser.add_argument("--rate-limit", default="100000/s", help="the bench channel's throttle rate")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--database", default="loyalty_crm_bench_orders")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--json", help="write the figures to this file as well")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="profile each measured phase with this py-spy executable (perturbs the figures: a separate run)",
    )
    args = parser.parse_args()
    names = [name for name in args.only.split(",") if name]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not args.database.startswith("loyalty_crm_bench_"):
        parser.error("the database is dropped and re-created: its name must start with loyalty_crm_bench_")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a bench killed from outside still cleans up
    if not redis_answers():
        print("Redis is not answering: each worker throttles with its own local-memory cache", file=sys.stderr)

    connection.settings_dict.setdefault("TEST", {})["NAME"] = args.database
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        scenario = scenario_create(args)
        connection.close()
        results = run_all(args, scenario, names)
        ledger = check_ledger()
    finally:
        if args.keep_database:
            print(f"kept the database {connection.settings_dict['NAME']}", file=sys.stderr)
        else:
            connection.creation.destroy_test_db(test_db, verbosity=0)
    report(args, results, ledger)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ledger": ledger}, indent=1))


if __name__ == "__main__":
    main()
