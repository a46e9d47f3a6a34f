# nbripple: `make demo` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv

$(STAMP): pyproject.toml | $(PY)
	$(UV) pip install --python $(PY) --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) notebooks/demo.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks notebooks

typecheck: install
	$(VENV)/bin/mypy

browser:
	bash .ci/install-browser || echo "could not install chromium: the browser tests will fail"

test: install lint typecheck browser
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/bench_catalog.py
	$(PY) benchmarks/bench_table.py
	$(PY) benchmarks/bench_run.py
	$(PY) benchmarks/bench_lineage.py
	$(PY) benchmarks/bench_watcher.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-home
