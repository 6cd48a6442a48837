"""Writing generated batches: PostgreSQL COPY from worker processes, or batched INSERTs on SQLite; a progress bar."""

from __future__ import annotations

import multiprocessing
import queue
import sys
import time
import traceback
from collections.abc import Callable

from django.db import connection, connections, transaction

from core.generate.columns import COLUMNS, TABLES
from core.generate.rows import NULL, Batch, Plan


def ids_reserve(*, customers: int, lines_per_customer: int, entries_per_customer: int) -> dict[str, int]:
    """The first id of a fresh block per table, large enough for ``customers`` customers. On PostgreSQL the
    sequences are moved past the blocks (one statement each), so the application's own inserts never collide."""
    sizes = {
        "customers_customer": 1,
        "points_account": 1,
        "points_lot": entries_per_customer,
        "points_entry": entries_per_customer,
        "points_allocation": entries_per_customer,
        "orders_order": lines_per_customer,
        "orders_orderline": lines_per_customer,
        "programmes_customertier": 1,
        "programmes_tierchange": 1,
    }
    first: dict[str, int] = {}
    with connection.cursor() as cursor:
        for table, size in sizes.items():
            count = customers * size
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                sequence = cursor.fetchone()[0]
                cursor.execute(
                    f"SELECT setval(%s, GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), "
                    f"(SELECT last_value FROM {sequence})) + %s)",
                    [sequence, count],
                )
                first[table] = cursor.fetchone()[0] - count + 1
            else:  # SQLite's AUTOINCREMENT follows the largest id inserted
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
                first[table] = cursor.fetchone()[0] + 1
    return first


def batch_write(rows: dict[str, list]) -> int:
    """One batch, in one transaction, table by table in foreign-key order. Returns the rows written."""
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for table in TABLES:
            table_rows = rows[table]
            if not table_rows:
                continue
            columns = COLUMNS[table]
            if connection.vendor == "postgresql":
                text = "\n".join(map("\t".join, table_rows)) + "\n"
                # psycopg's own cursor: Django's wrapper has no copy(); its errors become Django's all the same.
                with (
                    connection.wrap_database_errors,
                    cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
                ):
                    copy.write(text)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(None if value == NULL else value for value in row) for row in table_rows],
                )
            written += len(table_rows)
    return written


def session_prepare(*, check_foreign_keys: bool) -> None:
    """PostgreSQL: no wait for the WAL flush at each batch's commit, and (as a superuser, unless asked to check
    them) no foreign-key trigger per row — the rows are consistent by construction."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        if not check_foreign_keys:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if cursor.fetchone()[0]:
                cursor.execute("SET session_replication_role = replica")


def batches(customers: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(size, customers - start)) for start in range(0, customers, size)]


def run_in_process(plan: Plan, size: int, check_foreign_keys: bool, progress: Callable[[int, int], None]) -> None:
    session_prepare(check_foreign_keys=check_foreign_keys)
    try:
        for start, count in batches(plan.customers, size):
            progress(count, batch_write(Batch(plan).build(start, count)))
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("RESET session_replication_role")
                cursor.execute("RESET synchronous_commit")


def _worker(plan: Plan, jobs, results, check_foreign_keys: bool) -> None:
    try:
        session_prepare(check_foreign_keys=check_foreign_keys)
        while True:
            job = jobs.get()
            if job is None:
                break
            start, count = job
            results.put(("done", count, batch_write(Batch(plan).build(start, count))))
    except BaseException:  # reported to the parent, which stops the others
        results.put(("error", 0, traceback.format_exc()))
    finally:
        connections.close_all()


def run_in_workers(
    plan: Plan, size: int, workers: int, check_foreign_keys: bool, progress: Callable[[int, int], None]
) -> None:
    """``workers`` forked processes, each with its own connection, take batches from a queue."""
    context = multiprocessing.get_context("fork")
    jobs, results = context.Queue(), context.Queue()
    work = batches(plan.customers, size)
    for job in work:
        jobs.put(job)
    for _ in range(workers):
        jobs.put(None)
    connections.close_all()  # a forked child must not share the parent's socket
    processes = [
        context.Process(target=_worker, args=(plan, jobs, results, check_foreign_keys), daemon=True)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    finished = 0
    try:
        while finished < len(work):
            try:
                kind, customers, detail = results.get(timeout=1)
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    raise RuntimeError("the generator's workers stopped without finishing") from None
                progress(0, 0)
                continue
            if kind == "error":
                raise RuntimeError(f"a generator worker failed:\n{detail}")
            finished += 1
            progress(customers, detail)
    finally:
        for process in processes:
            if process.is_alive() and finished < len(work):
                process.terminate()
            process.join(timeout=30)


class ProgressBar:
    """``[#####.....]  45.0%  customers 450,000/1,000,000  rows 15,200,000  120,000 rows/s  ETA 3m10s`` on stderr:
    redrawn in place on a terminal, a line every ``every`` seconds otherwise."""

    def __init__(self, total: int, stream=None, every: float = 10.0) -> None:
        self.total, self.stream, self.every = total, stream or sys.stderr, every
        self.done = self.rows = 0
        self.started = self.shown = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, customers: int, rows: int) -> None:
        self.done += customers
        self.rows += rows
        now = time.monotonic()
        if self.tty and now - self.shown < 0.2 and self.done < self.total:
            return
        if not self.tty and now - self.shown < self.every and self.done < self.total:
            return
        self.shown = now
        self.stream.write(("\r" if self.tty else "") + self.line(now) + ("" if self.tty else "\n"))
        self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = now - self.started
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(30 * share)
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        eta = elapsed * (1 - share) / share if share > 0 else 0.0
        return (
            f"[{bar:.<30}] {100 * share:5.1f}%  customers {self.done:,}/{self.total:,}  rows {self.rows:,}  "
            f"{rate:,.0f} rows/s  elapsed {_duration(elapsed)}  ETA {_duration(eta)}"
        )

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
