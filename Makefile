# Two commands for a newcomer: `make serve` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: serve test lint clean install-dev browser

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
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

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
