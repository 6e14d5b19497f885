# Thin wrappers used by the README and CI.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# No wheel cache: CI installs once into a fresh venv, and the cache would double the disk it needs.
# pip installs the pinned CPU torch (uv does not look where this machine keeps that wheel), and
# uv the rest, compiled to bytecode as pip does: the same packages as pip resolves, in 36 s
# instead of 99 s (decision 53). Not compiling saves 20 s here and costs more in the tests: where
# PYTHONDONTWRITEBYTECODE is set, as on this machine, every process compiles what it imports.
export PIP_NO_CACHE_DIR := 1
export UV_NO_CACHE := 1
DEMO_INDEX ?= .lede/demo
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install browser demo test tiers test-fast warm lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.13.0" "uv>=0.9"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(PY) -e ".[eval,ray]" --group dev
	touch $@

demo: install
	$(BIN)/lede index examples/articles.jsonl --index $(DEMO_INDEX)
	$(BIN)/lede ask "Who plays Ethan Hunt in Mission: Impossible 7?" --index $(DEMO_INDEX)
	$(BIN)/lede serve --index $(DEMO_INDEX) --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

# Debian's Chromium for the browser tests (Playwright drives it; it cannot download its own).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "install Debian's chromium (apt-get install chromium) for the browser tests"; fi; \
	fi

# Every tier (CI): lint beside the tests. `tiers` runs unit, model, server, browser, ray and slow
# tests on two workers (a test module stays on one worker; the long modules go first:
# tests/conftest.py), each worker's models on one thread (two workers, two cores: decision 56).
# The browser's install runs beside the Python install, then `tests/warm.py` beside lint: it
# compiles the BM25 loop and exports the models into the tests' model cache (in .lede/).
TEST_ENV := XDG_CACHE_HOME=$(CURDIR)/.lede/test-cache LEDE_CACHE_DIR=$(CURDIR)/.lede/test-cache/lede \
	LEDE_MODEL_THREADS=1 OMP_NUM_THREADS=1
test:
	$(MAKE) -j3 lint tiers

tiers: browser warm
	$(TEST_ENV) $(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25

warm: install
	$(TEST_ENV) $(PY) -m tests.warm

# The inner loop: tests that need no real model, server, browser, Ray cluster or long run.
FAST := not model and not slow and not server and not browser and not ray
test-fast: install
	$(BIN)/pytest -m "$(FAST)" --durations=10

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(PY) -m lede.eval.bench.indexer --json eval/results/bench_indexer.json
	$(PY) -m lede.eval.bench.service --json eval/results/bench_service.json

clean:
	rm -rf $(VENV) .lede .mypy_cache .ruff_cache .pytest_cache
