# Two entry points: `make demo` and `make test`. Each sets up the virtual environment itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) -m search.demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/decode_time.py

clean:
	rm -rf $(VENV) results/*
