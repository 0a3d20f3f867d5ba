# Two commands for a newcomer: `make serve` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: serve test test-fast mutation lint clean install-dev browser bench bench-quick bench-pipeline fuzz torture soak

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-mutation: $(VENV)/.installed-test pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,mutation]'
	touch $@

install-dev: $(VENV)/.installed-test

## make serve: start timserver on the embedded SQLite database (ARGS="--port 9000" to change)
serve: $(VENV)/.installed
	$(BIN)/timserver serve $(ARGS)

## make browser: Debian's Chromium for the web console's browser tests (quick when present;
## without root it only warns, and those tests skip themselves with the reason)
browser:
	@bash scripts/install-browser.sh || echo "make: no Chromium at /usr/bin/chromium: the web-console browser tests will be skipped"

## make test: the whole test suite
test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest $(ARGS)

## make test-fast: the edit-test loop, under two minutes: everything but the tests marked slow
## (servers in child processes, the reliability slices, PostgreSQL snapshots; docs/testing.md)
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

## make mutation: mutation testing (mutmut) of usersig, the request parser, the UserID rules, the
## rate limiters and the account commands, one module at a time against the tests that target
## it (scripts/mutation.py), each within ARGS="--minutes 10"; the report and the survivors
## left, and why each is equivalent, in docs/testing.md
mutation: $(VENV)/.installed-mutation
	$(BIN)/python scripts/mutation.py $(ARGS)

## make fuzz / torture / soak: the reliability drivers of tests/reliability/ at full size (make
## test runs a short slice of each); figures and commands in docs/reliability.md
RELIABILITY := $(BIN)/python -m pytest -p no:cacheprovider -q
fuzz: $(VENV)/.installed-test
	TIMSERVER_FUZZ_EXAMPLES=$${TIMSERVER_FUZZ_EXAMPLES:-50000} $(RELIABILITY) \
		tests/reliability/test_fuzz_openapi.py tests/reliability/test_fuzz_http_bytes.py \
		tests/reliability/test_fuzz_inputs.py tests/reliability/test_fuzz_stateful.py $(ARGS)

torture: $(VENV)/.installed-test
	TIMSERVER_TORTURE_ROUNDS=$${TIMSERVER_TORTURE_ROUNDS:-25} $(RELIABILITY) \
		tests/reliability/test_torture_sigkill.py $(ARGS)

soak: $(VENV)/.installed-test
	TIMSERVER_SOAK_SECONDS=$${TIMSERVER_SOAK_SECONDS:-300} $(RELIABILITY) \
		tests/reliability/test_soak.py $(ARGS)

## make bench: server benchmarks with wrk (SQLite and PostgreSQL, 10k/1M/10M accounts) written to
## docs/benchmarks.md; loaded databases are cached in ~/.cache/timserver-bench (ARGS="--help")
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py $(ARGS)

## make bench-quick: the same with 10k accounts only, about 2 minutes; the table is printed
bench-quick: $(VENV)/.installed
	$(BIN)/python bench/run.py --quick $(ARGS)

## make bench-pipeline: every request-pipeline scenario against a bare ASGI callable on uvicorn,
## the emulator on and off, in one run (bench/pipeline.py; figures in docs/benchmarks.md)
bench-pipeline: $(VENV)/.installed
	$(BIN)/python bench/pipeline.py $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .mutation
