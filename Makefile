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

bench: $(BIN)/crmhub
	$(BIN)/python bench/engine.py --records 10000 --records 100000

clean:
	rm -rf $(VENV) crmhub-demo .pytest_cache .mypy_cache .ruff_cache .hypothesis
