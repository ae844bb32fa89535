# The two commands: `make run` (the whole stack on this machine) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test test-unit lint format bench clean browser-deps chaos

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/yibao up

# The dashboard's browser test drives Debian's Chromium (no browser download is possible here).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "the browser test needs: apt-get install chromium chromium-driver"; \
	  fi; \
	fi

# ruff (lint + format) over the tree, mypy strict on shared/ and the policy engine (pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) browser-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

# The chaos test, long: `make chaos SEED=123 MINUTES=5` (no SEED: a random one, printed). RUNS=10 runs it that many
# times with seeds SEED, SEED+1, …; CHAOS_LOG=FILE appends one JSON line of results per run to FILE.
SEED    ?=
MINUTES ?= 3
RUNS    ?= 1
CHAOS_LOG ?=
chaos: $(STAMP)
	@seed="$(SEED)"; [ -n "$$seed" ] || seed=$$(od -An -N3 -tu4 /dev/urandom | tr -d ' '); \
	status=0; for i in $$(seq 0 $$(($(RUNS) - 1))); do \
	  CHAOS_SEED=$$((seed + i)) CHAOS_MINUTES=$(MINUTES) CHAOS_LOG=$(if $(CHAOS_LOG),$(abspath $(CHAOS_LOG))) \
	    $(BIN)/python -m pytest -s -q -p no:cacheprovider tests/chaos/test_chaos.py || status=1; \
	done; exit $$status

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

# The stack as `yibao up` starts it, driven with whole flows, next to benchmarks/settle.py in the same run (~3 min).
# BENCH_ARGS="--seconds 30 --concurrency 16 --persons 400 --no-settle-only"
BENCH_ARGS ?=
.PHONY: bench-stack
bench-stack: $(STAMP)
	$(BIN)/python benchmarks/stack.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
