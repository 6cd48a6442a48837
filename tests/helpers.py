import os
import socket
import subprocess
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
