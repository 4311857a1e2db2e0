# Witchcraft: `make run` and `make test` are the whole set-up (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1
PYTHON_CANDIDATES := python3.13 python3.12 python3

.PHONY: help setup db replica migrate run worker serve test lint stop clean backup

help:
	@echo "make run    set up (venv, install, database, migrate) and serve on http://$(HOST):$(PORT), with the worker"
	@echo "make worker the same set-up, then the job worker alone (scheduled maintenance, mails)"
	@echo "make serve  production serving (gunicorn, DEBUG=false) on http://$(HOST):$(PORT); needs SECRET_KEY"
	@echo "make test   the same set-up, then the whole test suite"
	@echo "make demo   the same set-up, then demo data (1,000 users x 30 days) in the development database"
	@echo "make bench  the same set-up, then the benchmark on its own databases (bench/README.md)"
	@echo "make backup a base backup (point-in-time recovery) and a logical dump now: before a major change"
	@echo "make lint   ruff"
	@echo "make replica the same set-up, then a streaming standby of the embedded PostgreSQL (development)"
	@echo "make stop   stop the embedded standby, then the embedded PostgreSQL"

# A Python >= 3.12: the first of python3.13, python3.12, python3 that is new enough.
$(PY):
	@py=""; for c in $(PYTHON_CANDIDATES); do \
	  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then py=$$c; break; fi; \
	done; \
	if [ -z "$$py" ]; then echo "Witchcraft needs Python >= 3.12 (looked for: $(PYTHON_CANDIDATES)); install one and retry." >&2; exit 1; fi; \
	echo "creating $(VENV) with $$($$py --version)"; \
	$$py -m venv $(VENV)

# Barman's psycopg2 is built from source: it needs pg_config and libpq's headers (Debian's
# libpq-dev, installed when missing, as root).
$(STAMP): pyproject.toml | $(PY)
	@if ! command -v pg_config >/dev/null 2>&1 || [ ! -e "$$(pg_config --includedir 2>/dev/null)/libpq-fe.h" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpq-dev; \
	  else echo "Barman's psycopg2 needs libpq's headers: install libpq-dev (Debian) and retry." >&2; exit 1; fi; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet --disable-pip-version-check -e . --group dev
	@touch $(STAMP)

.env:
	cp .env.example .env

setup: $(STAMP) .env

db: setup
	$(PY) manage.py db start

# A streaming standby of the embedded server, in .witchcraft/replica (witchcraft/platform/
# embedded_replica.py): `manage.py db replica status|stop|reset|url` for the rest.
replica: db
	$(PY) manage.py db replica start

migrate: db
	$(PY) manage.py migrate --noinput

# The worker (witchcraft/tasks.py) runs beside the web server and stops with it. It waits out a
# database restart, and `--respawn` starts a new one if it dies (witchcraft/operations/worker.py). Ctrl-C
# reaches both; when runserver ends any other way the trap asks the worker to stop (SIGINT: it
# finishes the job in hand first) and waits for it, so the next `make run` starts clean.
run: migrate
	@$(PY) manage.py worker --respawn & worker=$$!; \
	trap 'kill -INT $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	$(PY) manage.py runserver $(HOST):$(PORT)

# The seed's "manual backup before a major change": a base backup and a logical dump, recorded.
backup: migrate
	$(PY) manage.py backup --now

# The job worker alone: scheduled maintenance (daily_maintenance, monthly_maintenance), mails.
worker: migrate
	$(PY) manage.py worker

# Production serving on this machine: gunicorn (witchcraft/gunicorn.conf.py) with DEBUG=false,
# static files collected for WhiteNoise. Needs SECRET_KEY in .env or the environment.
serve: setup
	@DEBUG=false $(PY) -m witchcraft.platform.serving preflight
	DEBUG=false $(PY) manage.py db start
	DEBUG=false $(PY) manage.py migrate --noinput
	DEBUG=false $(PY) manage.py collectstatic --noinput --verbosity 0
	DEBUG=false HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c witchcraft/gunicorn.conf.py

# The suite reads the primary only (a replica in .env is ignored): the replica's own tests start
# a primary and a standby of their own.
test: migrate promtool postgres-server
	DATABASE_REPLICA_URL= $(PY) -m pytest $(PYTEST_ARGS)

# The tests check the alert rules (deploy/prometheus) with promtool, from Debian's prometheus
# package, installed when missing (as root; the package's own server is not needed).
.PHONY: promtool
promtool:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	  else echo "make test needs promtool (Debian: apt-get install --no-install-recommends prometheus)" >&2; exit 1; fi; \
	fi

# The slow-statements test (witchcraft/tests/test_slow_statements_live.py) starts a PostgreSQL of
# its own that preloads pg_stat_statements, from Debian's server package (pg_stat_statements
# comes with it), installed when missing (as root; the package also sets up a server of its own,
# which a machine with systemd starts).
.PHONY: postgres-server
postgres-server:
	@if ! ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/lib/pg_stat_statements.so >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; \
	  else echo "make test needs PostgreSQL's server programs (Debian: apt-get install --no-install-recommends postgresql)" >&2; exit 1; fi; \
	fi

# Demo data in the development database: DEMO_USERS users with DEMO_DAYS days of usage (see
# `manage.py seed_demo --help`). Earlier demo data is replaced, nothing else is touched; a
# database with other users is refused unless DEMO_ARGS=--force.
DEMO_USERS ?= 1000
DEMO_DAYS  ?= 30
.PHONY: demo
demo: migrate
	$(PY) manage.py seed_demo --users $(DEMO_USERS) --days $(DEMO_DAYS) --reset-demo $(DEMO_ARGS)

# The benchmark (bench/README.md) on databases of its own (witchcraft_bench, witchcraft_bench_10x
# on the same server; never the development data): bench/results/latest.md and latest.json.
# BENCH_ARGS=--quick for a run under two minutes (bench/results/quick.*). Needs pgbench (it comes
# with PostgreSQL's client) and wrk, installed from Debian's packages when missing.
.PHONY: bench
bench: migrate
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else echo "make bench needs wrk (Debian: apt-get install wrk)" >&2; exit 1; fi; \
	fi
	$(PY) -m bench $(BENCH_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The standby first: it is stopped whether or not the primary's stop succeeds, and vice versa.
stop:
	@if [ -x $(PY) ]; then $(PY) manage.py db replica stop; $(PY) manage.py db stop; fi

clean: stop
	rm -rf $(VENV) .witchcraft staticfiles
