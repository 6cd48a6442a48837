"""Shared by the HTTP benchmarks: gunicorn under the production settings against a throw-away database, the
request log it writes, and the CPU its workers and their PostgreSQL backends use (Linux /proc).

The approach of bench/cart.py, made reusable: persistent database connections, the Redis cache for the throttle
counters (a local-memory cache per worker if Redis is not answering), JSON request logs to a file (each line
carries the app's own duration of the request), DEBUG off, TLS redirects off (plain HTTP on localhost).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379"


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(durations: list[float]) -> dict:
    return {
        "count": len(durations),
        "p50": percentile(durations, 50),
        "p99": percentile(durations, 99),
        "max": max(durations),
        "mean": statistics.fmean(durations),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except Exception:
        return False


def database_url(settings_dict: dict) -> str:
    user = quote(settings_dict["USER"] or "")
    password = f":{quote(settings_dict['PASSWORD'])}" if settings_dict.get("PASSWORD") else ""
    host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def gunicorn_start(
    *,
    app: str,
    port: int,
    database: str,
    workers: int,
    worker_class: str,
    threads: int,
    log_file,
    cache_db: int = 13,
) -> subprocess.Popen:
    """gunicorn serving ``app`` (a WSGI path such as ``loyalty_crm.wsgi`` or ``bench.noop_urls:application``)
    under the production settings, its output (JSON request log lines included) going to ``log_file``."""
    redis = redis_answers()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty_crm.settings.production",
        "DATABASE_URL": database,
        "SECRET_KEY": "bench-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Only the throttle counters use the cache; a database of their own keeps them apart from a running app's.
        "CELERY_BROKER_URL": f"{REDIS_URL}/0" if redis else "memory://",
        "CACHE_URL": f"{REDIS_URL}/{cache_db}" if redis else "locmemcache://bench",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "INFO",  # the request log line is part of a production request's cost
        "LOG_FORMAT": "json",
        # Backends that outlive the run: one reconnecting mid-phase takes its CPU out of the per-phase PostgreSQL
        # figure (it came out negative with the default 60 s).
        "CONN_MAX_AGE": "3600",
    }
    options = f"--bind 127.0.0.1:{port} --workers {workers} --worker-class {worker_class} --threads {threads}"
    command = [sys.executable, "-m", "gunicorn", app, *options.split(), "--log-level", "warning"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )


def gunicorn_stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the master and its workers: their own session
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def wait_until_serving(port: int, process: subprocess.Popen, path: str, body: bytes, headers: dict) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited")
        if post(port, path, body, headers)[0] == 200:
            return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer 200 within 60 s")


def request_log(log_path: str, offset: int) -> Iterator[dict]:
    """The JSON request log lines (method, path, status, duration_ms, …) written after ``offset``."""
    with open(log_path) as log:
        log.seek(offset)
        for line in log:
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "duration_ms" in record:
                yield record


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time used so far by these processes (Linux /proc), threads included."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def gunicorn_workers(process: subprocess.Popen) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]


def database_backends(connection) -> list[int]:
    """The PostgreSQL backends serving this connection's database, except this connection's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    connection.close()
    return backends
