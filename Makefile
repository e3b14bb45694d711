# The README's commands. Everything installs into .venv; nothing is needed beforehand but python3.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONNECTORS := $(sort $(wildcard connectors/*/pyproject.toml))
CONNECTOR_DIRS := $(patsubst %/pyproject.toml,%,$(CONNECTORS))
SRC_TREES := src $(addsuffix /src,$(CONNECTOR_DIRS))
TEST_TREES := tests $(addsuffix /tests,$(CONNECTOR_DIRS))
STAMP := $(VENV)/.installed

.PHONY: help install browser lint types unit test demo bench soak docs clean

help:
	@echo "make demo   - the whole product on built-in sandbox instances"
	@echo "make test   - lint, types and every test"
	@echo "make bench  - benchmarks against peer clients (see docs/performance.md)"
	@echo "make soak   - the full reliability soak (see docs/reliability.md)"

$(STAMP): pyproject.toml $(CONNECTORS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]" $(foreach d,$(CONNECTOR_DIRS),-e "$(d)[dev]")
	@touch $@

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: install
	$(VENV)/bin/mypy --strict $(SRC_TREES)

browser:
	@bash scripts/ensure-browser.sh

unit: install browser
	$(PY) -m pytest $(TEST_TREES) $(PYTEST_ARGS)

test: lint types unit

demo: install
	$(VENV)/bin/itsm-bridge demo

bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

soak: install
	@mkdir -p build
	ITSM_SOAK=full ITSM_SOAK_FIGURES=build/reliability-figures.json $(PY) -m pytest tests/reliability -m soak -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache
