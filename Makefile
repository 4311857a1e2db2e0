# Witchcraft: `make run` and `make test` are the whole set-up (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
HOST   ?= 127.0.0.1
PYTHON_CANDIDATES := python3.13 python3.12 python3

.PHONY: help setup db migrate run test lint stop clean

help:
	@echo "make run    set up (venv, install, database, migrate) and serve on http://$(HOST):$(PORT)"
	@echo "make test   the same set-up, then the whole test suite"
	@echo "make lint   ruff"
	@echo "make stop   stop the embedded PostgreSQL"

# A Python >= 3.12: the first of python3.13, python3.12, python3 that is new enough.
$(PY):
	@py=""; for c in $(PYTHON_CANDIDATES); do \
	  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then py=$$c; break; fi; \
	done; \
	if [ -z "$$py" ]; then echo "Witchcraft needs Python >= 3.12 (looked for: $(PYTHON_CANDIDATES)); install one and retry." >&2; exit 1; fi; \
	echo "creating $(VENV) with $$($$py --version)"; \
	$$py -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet --disable-pip-version-check -e . --group dev
	@touch $(STAMP)

.env:
	cp .env.example .env

setup: $(STAMP) .env

db: setup
	$(PY) manage.py db start

migrate: db
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py runserver $(HOST):$(PORT)

test: migrate
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

stop:
	@if [ -x $(PY) ]; then $(PY) manage.py db stop; fi

clean: stop
	rm -rf $(VENV) .witchcraft staticfiles
