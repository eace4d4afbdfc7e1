# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= var/demo.duckdb
SAMPLE := data/sample/goodbooks
export SHELFWISE_DB := $(DB)

.PHONY: demo test test-fast lint screenshots install browser-deps spark-deps bench clean

$(BIN)/shelfwise: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,spark]'
	touch $@

install: $(BIN)/shelfwise

# Debian's Chromium and its driver for the browser tests (never a test tool's own browser download).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "installing chromium and chromium-driver"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# A Java runtime for the Spark engine (pyspark runs Spark in a JVM; its tests run in local[2]) and
# OpenBLAS for Spark's native BLAS (without it netlib warns on every fit and uses Java loops).
spark-deps:
	@pkgs=""; \
	command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || pkgs="$$pkgs openjdk-17-jre-headless"; \
	/sbin/ldconfig -p | grep -q 'libblas\.so\.3' || pkgs="$$pkgs libopenblas0-pthread"; \
	if [ -n "$$pkgs" ]; then \
		echo "installing$$pkgs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; \
	fi

# The sample has ~100 ratings per book, so books need 50 ratings (not the full data's 100) to stay in.
demo: install
	$(BIN)/shelfwise refresh --data $(SAMPLE) --min-book-ratings 50
	$(BIN)/shelfwise similar "The Da Vinci Code" --model als --n 5
	$(BIN)/shelfwise dashboard

# Lint first: a style or layering slip fails in seconds, before the suite's minutes.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: install browser-deps spark-deps lint
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# The README's screenshots come from the browser suite, which otherwise writes them to a temp dir.
screenshots: install browser-deps
	SHELFWISE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -m browser

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
