# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint unit bench clean

$(BIN)/crmhub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/crmhub
	$(BIN)/crmhub demo

test: lint unit

lint: $(BIN)/crmhub
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(BIN)/crmhub
	$(BIN)/pytest

# The sync benchmark compares with hubspot-api-client when it is installed (not a dependency).
bench: $(BIN)/crmhub
	$(BIN)/python bench/engine.py --records 10000 --records 100000
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/rate_limited.py

clean:
	rm -rf $(VENV) crmhub-demo .pytest_cache .mypy_cache .ruff_cache .hypothesis
