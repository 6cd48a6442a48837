# Two commands set everything up on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The stamp carries a hash of the requirements, so changing them reinstalls.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
MANAGE := $(BIN)/python manage.py
SQLITE_TEST_URL := sqlite:///$(CURDIR)/.pytest-sqlite.sqlite3

.PHONY: install browser run test lint format locale messages worker beat run-services bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

locale: install  ## compile translations (.po → .mo); needs GNU gettext (msgfmt)
	@$(MANAGE) compilemessages --ignore=$(VENV) -v0

messages: install  ## re-extract translatable strings into locale/ru (then translate and commit)
	$(MANAGE) makemessages -l ru --ignore=$(VENV) --ignore=staticfiles --ignore=bench --no-obsolete

run: install locale  ## embedded default: SQLite + in-process tasks, on $(HOST):$(PORT)
	$(MANAGE) migrate --noinput -v1
	$(MANAGE) demo_setup
	$(MANAGE) runserver $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:  ## Debian's Chromium for the real-browser tests (tests/browser), installed through apt when missing
	@test -x $(CHROMIUM) || $(SUDO) apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium)

test: install locale lint browser  ## ruff, migrations check, pytest on PostgreSQL, smoke pass on SQLite
	DATABASE_URL=$(SQLITE_TEST_URL) $(MANAGE) makemigrations --check --dry-run
	$(BIN)/pytest
	TEST_DATABASE_URL=$(SQLITE_TEST_URL) $(BIN)/pytest -m smoke -p no:cacheprovider

BROKER_ENV = CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}

worker: install locale  ## Celery worker on Redis (CELERY_BROKER_URL, default redis://127.0.0.1:6379/0)
	$(BROKER_ENV) $(BIN)/celery -A loyalty_crm worker --loglevel=INFO

beat: install  ## Celery beat (scheduled jobs) on Redis, as `worker`
	$(BROKER_ENV) $(BIN)/celery -A loyalty_crm beat --loglevel=INFO --schedule=$(VENV)/celerybeat-schedule

# Local stand-ins for what a real deployment sets; every one can be overridden from the environment.
SERVICES_ENV = DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-loyalty_crm.settings.production} \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/loyalty_crm} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0} \
	SECRET_KEY="$${SECRET_KEY:-local-services-only-$$(hostname)-not-a-production-secret-0123456789}" \
	ALLOWED_HOSTS=$${ALLOWED_HOSTS:-127.0.0.1,localhost} \
	SECURE_SSL_REDIRECT=$${SECURE_SSL_REDIRECT:-false} SECURE_COOKIES=$${SECURE_COOKIES:-false} \
	SECURE_HSTS_SECONDS=$${SECURE_HSTS_SECONDS:-0} PATH=$(CURDIR)/$(BIN):$$PATH

run-services: install locale  ## production-like: gunicorn + worker + beat on PostgreSQL and Redis (see README)
	-@psql -h 127.0.0.1 -U postgres -tc "SELECT 1" loyalty_crm >/dev/null 2>&1 || createdb -h 127.0.0.1 -U postgres loyalty_crm
	$(SERVICES_ENV) $(BIN)/honcho start -f Procfile

bench: install
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .pytest-sqlite.sqlite3 .ruff_cache
