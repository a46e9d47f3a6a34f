# nbripple: `make demo` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck jest bench bench-smoke browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv

# The editable install also builds the sidebar (labextension/, with Node and jlpm) and
# installs the build where JupyterLab finds it; a changed source reinstalls. (For a
# watch loop instead: `.venv/bin/jupyter-builder develop --overwrite .` once, then
# `jlpm watch` in labextension/.)
LABEXT_SOURCES := $(wildcard labextension/package.json labextension/src/*.ts labextension/style/*)

$(STAMP): pyproject.toml $(LABEXT_SOURCES) | $(PY)
	$(UV) pip install --python $(PY) --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) notebooks/demo.py

# ruff, the import layers, and the sidebar's eslint, prettier and stylelint (jlpm
# lint:check, offline from node_modules; the build's `jlpm install` puts them there,
# unless it found nothing to rebuild)
lint: install
	$(VENV)/bin/ruff check src tests benchmarks notebooks
	$(VENV)/bin/lint-imports --no-cache
	cd labextension && export PATH="$(abspath $(VENV))/bin:$$PATH" && \
		{ test -x node_modules/.bin/eslint || jlpm install; } && jlpm lint:check

typecheck: install
	$(VENV)/bin/mypy

browser:
	bash .ci/install-browser || echo "could not install chromium: the browser tests will fail"

# The sidebar's unit tests (jest), with the jlpm of the venv.
jest: install
	cd labextension && PATH="$(abspath $(VENV))/bin:$$PATH" jlpm test

test: install lint typecheck jest browser
	$(PY) -m pytest

BENCHES := catalog table run lineage watcher served sidebar

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
	rm -rf labextension/node_modules labextension/lib labextension/*.tsbuildinfo src/nbripple/labextension
