# Every target makes the virtualenv it needs first, so each is one command on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?= $(HOME)/Pictures

.PHONY: install dev test lint scan watch bench clean

$(BIN)/dupwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/dupwatch pyproject.toml
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -e '.[dev,cnn,bench]'
	touch $@

install: $(BIN)/dupwatch

dev: $(VENV)/.dev

# The main job: watch a photo folder and report each duplicate that lands (Ctrl-C stops it).
watch: install
	$(BIN)/dupwatch watch "$(PHOTOS)"

# Once: index a photo folder and report the duplicates already in it.
scan: install
	$(BIN)/dupwatch scan "$(PHOTOS)"

lint: dev
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
