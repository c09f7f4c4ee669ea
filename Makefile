# Two commands do all set-up on a fresh machine:
#   make demo   — the hub with its live page on http://127.0.0.1:8000/
#   make test   — lint, types and the whole test suite
#   make bench  — the quick benchmarks (make bench-all: all of them), docs/benchmarks.md
# Each creates .venv (Python 3.11+) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test check bench bench-all clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

demo: $(STAMP)
	$(BIN)/ssehub demo

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/test

check: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/check

# The quick set (a few minutes): docs/benchmarks.md says what each measures.
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/axes.py
	$(BIN)/python benchmarks/parse.py

# Everything: every axis, the fan-out table and the hub operations (~15 minutes).
bench-all: $(BENCH_STAMP)
	$(BIN)/python benchmarks/axes.py --all
	$(BIN)/python benchmarks/fanout.py
	$(BIN)/python benchmarks/hub_ops.py
	$(BIN)/python benchmarks/idle_bytes.py
	$(BIN)/python benchmarks/parse.py

clean:
	rm -rf $(VENV) test-artifacts .mypy_cache .ruff_cache .pytest_cache .hypothesis
