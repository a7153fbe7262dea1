# The two entry points of the README. Both create .venv if missing and install from setup.py.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-slow demo lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python setup.py pyproject.toml
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/python -m dctformer_tf.dct.fused_op 2>/dev/null || \
	  echo "fused encoder kernel not built; the TensorFlow-ops encoder will run"
	touch $(STAMP)

# Two pytest workers: a test is mostly Python-side tracing on one core, so two share the
# 2-core machine well (timings in docs/testing.md). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/ruff check dctformer_tf tests tools
	$(BIN)/python -m pytest -q --durations=10 -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

demo: $(STAMP)
	$(BIN)/python tools/demo.py --out outputs/demo

lint: $(STAMP)
	$(BIN)/ruff check dctformer_tf tests tools

clean:
	rm -rf outputs build dist *.egg-info
