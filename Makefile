# Every target makes the virtualenv it needs first, so each is one command on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?= $(HOME)/Pictures

.PHONY: install dev test lint scan bench clean

$(BIN)/dupwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/dupwatch
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -e '.[dev,cnn]'
	touch $@

install: $(BIN)/dupwatch

dev: $(VENV)/.dev

# The main job: index a photo folder and report its duplicates.
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
