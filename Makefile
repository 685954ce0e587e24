# Developer and CI entry points. CI runs .ci/run, which runs `make test` and `make lint`.
#
#   make venv         create .venv (if missing) and install the project with its dev tools
#   make run          serve the API on 127.0.0.1:8000 (embedded PostgreSQL/Redis under .data/
#                     unless DATABASE_URL / REDIS_URL are set, e.g. in .env)
#   make dev          the same with FCM, APNs, Web Push and SMTP emulated locally and two demo
#                     users (refuses DATABASE_URL); see README "Try it in five minutes"
#                     Emails the service sends land in its SMTP sink: `messenger dev inbox`.
#                     With `make run`: `$(BIN)/python -m backend.devtools.emulators.smtp --port 1025`
#                     prints them; set SMTP_HOST=127.0.0.1 SMTP_PORT=1025 SMTP_SECURITY=none.
#   make test         the test suite (TEST_DATABASE_URL / TEST_REDIS_URL, else throwaway servers)
#   make lint         ruff check + ruff format --check
#   make fuzz         schemathesis over the OpenAPI schema against a real server, many examples
#                     (`make test` runs the same test with FUZZ_EXAMPLES=10)
#   make bench        the benchmark; `make bench-smoke` is its quick variant
#
# VENV=/some/dir make test  uses another virtualenv (handy for trying a clean install).

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run dev test lint fuzz bench bench-smoke

venv: $(STAMP)

# Re-installs only when a requirements file or the packaging metadata changed.
$(STAMP): requirements.txt requirements-dev.txt requirements-embedded.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements-dev.txt
	$(BIN)/python -m pip install -e .
	touch $@

run: venv
	$(BIN)/messenger serve

dev: venv
	$(BIN)/messenger dev

test: venv
	$(BIN)/python -m pytest

FUZZ_EXAMPLES ?= 200
fuzz: venv
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest backend/tests/test_fuzz.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: venv
	$(BIN)/python -m bench

bench-smoke: venv
	$(BIN)/python -m bench --smoke
