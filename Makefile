# nbripple: `make demo` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench bench-smoke browser clean

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
	$(VENV)/bin/lint-imports --no-cache

typecheck: install
	$(VENV)/bin/mypy

browser:
	bash .ci/install-browser || echo "could not install chromium: the browser tests will fail"

test: install lint typecheck browser
	$(PY) -m pytest

BENCHES := catalog table run lineage watcher

# Every benchmark runs; the target fails if any missed a target (each exits 1 on a miss).
bench: install
	@status=0; for b in $(BENCHES); do $(PY) benchmarks/bench_$$b.py || status=1; done; \
	exit $$status

# The smoke runs (--quick), held to their smoke targets, as the test suite runs them.
bench-smoke: install
	@status=0; for b in $(BENCHES); do $(PY) benchmarks/bench_$$b.py --quick || status=1; \
	done; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-home
