"""`make run` from a checkout: migrates, loads demo data, prints the login and serves the admin and API docs."""

import http.cookiejar
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, clean_env, free_port

pytestmark = pytest.mark.slow


def wait_for_line(process: subprocess.Popen, pattern: str, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"{pattern!r} never printed; output:\n{''.join(seen)}")


def wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_make_run_serves_admin_and_api_docs_with_the_printed_login(tmp_path: Path):
    database = tmp_path / "demo.sqlite3"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=REPO,
        env=clean_env(DATABASE_URL=f"sqlite:///{database}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        login = wait_for_line(process, r"login: (\S+)\s+password: (\S+)", timeout=180)
        wait_for_http(f"{base}/healthz", timeout=60)

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        login_page = opener.open(f"{base}/admin/login/")
        docs = opener.open(f"{base}/api/docs/")
        docs_html = docs.read().decode()
        swagger_js = re.search(r'src="([^"]*swagger-ui-bundle\.js)"', docs_html).group(1)
        schema = opener.open(f"{base}/api/schema/")

        html = login_page.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        form = {"username": login[1], "password": login[2], "csrfmiddlewaretoken": token, "next": "/admin/"}
        admin_index = opener.open(f"{base}/admin/login/", urllib.parse.urlencode(form).encode())

        assert login_page.status == 200
        assert "Loyalty CRM" in html
        assert docs.status == 200
        assert opener.open(urllib.parse.urljoin(base, swagger_js)).status == 200  # served locally, no CDN
        assert schema.status == 200
        assert admin_index.geturl() == f"{base}/admin/"
        assert "Loyalty programme administration" in admin_index.read().decode()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()

    counts_before = _row_counts(database)
    again = subprocess.run(
        [PYTHON, "manage.py", "demo_setup"],
        cwd=REPO,
        env=clean_env(DATABASE_URL=f"sqlite:///{database}"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "already present" in again.stdout
    assert _row_counts(database) == counts_before


def _row_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        tables = ["auth_user", "integrations_channel", "integrations_apikey", "customers_customer"]
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables}
