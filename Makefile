# The whole set-up: `make run` serves the survey, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
WEB_CONCURRENCY ?= 2
HOST ?= 127.0.0.1
PYTEST_ARGS ?=
JUNIT ?=
BENCH_ARGS ?=
LOADTEST_ARGS ?=
export PORT WEB_CONCURRENCY

.PHONY: run test install install-dev serve db lint format translations bench bench-large loadtest validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the project's dependencies change.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

static/vendor/plotly.min.js: $(VENV)/.installed
	@mkdir -p static/vendor
	cp "$$($(BIN)/python -c 'import analysis.figures as f; print(f.plotly_js_path())')" $@

# axe-core for the accessibility audit of the browser tests, from the npm registry.
AXE_VERSION ?= 4.11.0
tests/browser/vendor/axe.min.js:
	@mkdir -p tests/browser/vendor
	@if command -v npm >/dev/null 2>&1; then \
	  tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar xzf axe-core-*.tgz) \
	  && cp $$tmp/package/axe.min.js $@ && rm -rf $$tmp; \
	else echo "npm not found: accessibility audit will be skipped"; fi

install: $(VENV)/.installed static/vendor/plotly.min.js
install-dev: install $(VENV)/.installed-dev tests/browser/vendor/axe.min.js

db: install
	$(BIN)/flask --app survey init-db
	$(BIN)/flask --app survey load-catalog

# With no researcher account yet, prints a one-time link to create the first owner's.
run: db
	$(BIN)/flask --app survey setup-link --if-none
	$(BIN)/gunicorn --workers $(WEB_CONCURRENCY) --bind $(HOST):$(PORT) --no-control-socket --access-logfile - \
		--logger-class survey.logs.AccessLogger 'survey:create_app()'

# Two passes: the bulk on both cores (one file per worker), then the tests that start
# gunicorn, Chromium or restart PostgreSQL, alone. JUNIT=name writes name-1.xml, name-2.xml.
test: install-dev
	$(BIN)/pytest -n 2 --dist loadfile -m "not serial" $(if $(JUNIT),--junitxml=$(JUNIT)-1.xml) $(PYTEST_ARGS)
	$(BIN)/pytest -m serial --durations=10 $(if $(JUNIT),--junitxml=$(JUNIT)-2.xml) $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The export baseline is the sqlite3 shell (Debian's sqlite3 package). The table also goes
# into README.md, between the bench markers of "Performance, measured".
bench: install-dev
	@command -v sqlite3 >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; } \
		|| echo "sqlite3 shell missing (apt-get install sqlite3): the export baseline will be n/a"
	$(BIN)/python -m benchmarks.run --readme $(BENCH_ARGS)

# The issue-14 target at 1,000,000 respondents, PostgreSQL only (seeding takes ~6 minutes).
bench-large: install-dev
	$(BIN)/python -m benchmarks.run --only dashboard --sizes 1000000 --no-sqlite $(BENCH_ARGS)

# The load and fault scenarios (workers killed mid-submit, PostgreSQL restarted, two instances
# sharing Redis); `make test` runs only a short check of the harness itself.
# LOADTEST_ARGS="--respondents 60 --concurrency 10" for a short run of all five.
loadtest: install-dev
	$(BIN)/python -m benchmarks.loadtest $(LOADTEST_ARGS)

# Simulation check of the primary tests (partially overlapping samples): level and coverage
# over correlations and designs; prints the markdown table of the README (about 10 minutes).
VALIDATE_ARGS ?=
validate: install-dev
	$(BIN)/python -m benchmarks.validate $(VALIDATE_ARGS)

translations: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o /tmp/survey-messages.pot .
	$(BIN)/pybabel update -i /tmp/survey-messages.pot -d survey/translations --width 100
	$(BIN)/pybabel compile -d survey/translations

clean:
	rm -rf $(VENV) static/vendor tests/browser/vendor .pytest_cache .ruff_cache
