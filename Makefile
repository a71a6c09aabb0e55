# Two commands a new user needs: `make run` and `make test`. Both set themselves up.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The first interpreter that is Python 3.12 or newer (.python-version asks for 3.13).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.14 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)


.PHONY: run pay test bench prod-check lint typecheck migrations-check messages venv clean

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "Python 3.12 or newer is needed (python3.13 recommended)." >&2; exit 1; fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

## make run — migrate, load demo data, start web + worker + beat + commserver (SQLite and a file broker by
## default; DATABASE_URL / REDIS_URL switch to PostgreSQL / Redis). Other ports: WEB_ADDR=127.0.0.1:8100
## (the site; every printed link follows it) and COMMSERVER_PORT=7800 (the MPN line; give `make pay` the same).
run: venv
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py seed_demo
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py demo_info
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/honcho -f config/Procfile -d . start

## make pay — with make run going: the MPN simulator pays a demo invoice over the line (INVOICE=<number>),
## to the commserver on COMMSERVER_PORT (7700 unless set; the same as for make run).
pay: venv
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py mpn_simulate pay --biller 58191001 $(if $(INVOICE),--invoice $(INVOICE))

## make test — the whole suite. Without DATABASE_URL/REDIS_URL it runs on SQLite and skips the
## integration tests with a reason; REQUIRE_SERVICES=1 turns those skips into failures.
test: venv
	env -u DJANGO_SETTINGS_MODULE $(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	env -u DJANGO_SETTINGS_MODULE $(PY) -m pytest tests/bench -p no:cacheprovider -s $(PYTEST_ARGS)

## make prod-check — run with the production environment (as the services get it; no DJANGO_DEBUG): Django's
## deployment checks, the security settings, PostgreSQL, Redis and Celery as production uses them, each
## item OK or FAIL with what to change; fails on any FAIL. PROD_CHECK_ARGS="--json" or "--waive=ID".
prod-check: venv
	env -u DJANGO_SETTINGS_MODULE $(PY) manage.py prod_check $(PROD_CHECK_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check . || true

typecheck: venv
	$(VENV)/bin/mypy billing payeasy reconciliation config

migrations-check: venv
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

messages: venv
	DJANGO_DEBUG=1 $(PY) manage.py makemessages -l ja -l en --ignore='.venv/*' --ignore='tests/*' --ignore='docs/*'
	DJANGO_DEBUG=1 $(PY) manage.py compilemessages --ignore='.venv/*'

clean:
	rm -rf .run
