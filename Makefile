# The two commands of README.md:
#   make run   installs everything, migrates, seeds the demo and serves on http://127.0.0.1:8000 (SQLite, tasks in-process)
#   make test  installs everything, prepares PostgreSQL/Redis/Chromium where missing, and runs the whole suite
#              on PostgreSQL, then again on SQLite (all but the tests that need PostgreSQL or a real worker)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/enrollment
SQLITE_TEST_URL ?= sqlite:///$(CURDIR)/var/smoke.sqlite3
REDIS_URL ?= redis://127.0.0.1:6379/0
# What mypy checks (settings in pyproject.toml): every app and the site package.
APPS := accounts courses enrollments codes organisations reports enrollment_site demo

.PHONY: install run serve migrate seed worker beat test test-fast lint bench vendor clean messages compilemessages

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# The shipped languages (settings.LANGUAGES) besides English.
LOCALES := fr es de nl ar
MAKEMESSAGES_IGNORE := --ignore=.venv --ignore=node_modules --ignore=tests --ignore=bench --ignore=static --ignore=staticfiles --ignore=var

# Refreshes locale/*/LC_MESSAGES/django.po from the marked strings (needs GNU gettext).
messages: install
	$(PY) manage.py makemessages $(addprefix -l ,$(LOCALES)) $(MAKEMESSAGES_IGNORE) --add-location=file --no-obsolete

# Compiles the catalogs into .mo files: with GNU gettext's msgfmt when installed, else with Babel.
compilemessages: install
	$(PY) scripts/compile_messages.py

migrate: install compilemessages
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

run: seed
	@echo ""
	@echo "  Enrollment manager is starting at http://$(HOST):$(PORT)/"
	@echo "  Log in as admin/admin, instructor/instructor, staff/staff or learner1/learner1."
	@echo "  Emails (activation links included) are printed here and saved under var/mail/."
	@echo ""
	SITE_URL=http://$(HOST):$(PORT) $(PY) manage.py runserver $(HOST):$(PORT)

# Production-like processes; set DATABASE_URL and CELERY_BROKER_URL first (see README).
serve: install
	$(BIN)/gunicorn enrollment_site.wsgi --bind $(HOST):$(PORT) --workers 3

worker: install
	$(BIN)/celery -A enrollment_site worker --loglevel=INFO --queues=default,email,bulk,reports --concurrency=2

beat: install
	$(BIN)/celery -A enrollment_site beat --loglevel=INFO

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(APPS)

test: install
	bash scripts/test_services.sh
	$(MAKE) compilemessages
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(APPS)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) manage.py makemigrations --check --dry-run
	@echo "== every marked string translated in every shipped language =="
	$(PY) scripts/check_translations.py
	@echo "== full suite on PostgreSQL =="
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(REDIS_URL) $(BIN)/pytest
	@echo "== the suite again on the embedded default (SQLite), browser journeys included =="
	mkdir -p var
	DATABASE_URL=$(SQLITE_TEST_URL) $(BIN)/pytest

# The suite without browser and worker tests, for quick iterations.
test-fast: install
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -m "not e2e and not worker and not faults" -x -q

# Each benchmark makes (and drops first) its own database next to TEST_DATABASE_URL's
# (bench.flat keeps its <name>_bench_small and reuses it; --scale 1m: see README). bench.flat
# prints the whole flat table, taking the API, counters, reports and email rows from those
# modules, so they are not run again here (run them alone for their extra columns).
bench: install
	bash scripts/test_services.sh
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.codes
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.organisations
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.roster
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.audit_log
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.roster_actions
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.undo
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.expiry
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench.flat

vendor:
	bash scripts/vendor_static.sh

clean:
	rm -rf $(VENV) var staticfiles db.sqlite3
