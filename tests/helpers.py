import os
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment of a fresh shell: none of pytest's Django settings, plus ``overrides``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "TEST_DATABASE_URL", "CELERY_BROKER_URL"}
    }
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


WORKER_COMMAND = [
    str(REPO / ".venv" / "bin" / "celery"),
    "-A",
    "loyalty_crm",
    "worker",
    "--pool=solo",
    "--loglevel=INFO",
    "--without-heartbeat",
    "--without-gossip",
    "--without-mingle",
]


def worker_database_url() -> str:
    """The URL of the (PostgreSQL) test database, for a process the test starts, e.g. a Celery worker."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_celery_worker(*, stdout, **env: str) -> subprocess.Popen:
    """A real Celery worker process of this project, against the test database and ``env``'s broker."""
    return subprocess.Popen(
        WORKER_COMMAND,
        cwd=REPO,
        env=clean_env(DATABASE_URL=worker_database_url(), **env),
        stdout=stdout,
        stderr=subprocess.STDOUT,
    )


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Run every call in its own thread (its own database connection), all released at once on a barrier;
    each call's result or exception, in order. For races against PostgreSQL's row locks."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return outcomes
