# The two commands: `make demo` and `make test`. Both set up .venv first when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup system-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python >= 3.11) on PATH, or run: make PYTHON=python3 ..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The `capnp` CLI (Debian package capnproto) lets the tests prove that what ssmd writes decodes with
# Cap'n Proto's own tool. Installed when missing and we may (root, apt-get present).
system-deps:
	@command -v capnp >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq capnproto) >/dev/null; \
	  else echo "warning: the capnp CLI is missing (apt-get install capnproto); its tests will fail"; fi; }

demo: setup
	$(VENV)/bin/ssmd demo

test: setup system-deps
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check ssmd tests bench
	$(VENV)/bin/mypy

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
