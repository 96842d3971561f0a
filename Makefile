# `make test` and `make demo` set up .venv on first use (and again only when the pins change).
# GPU machines: make setup PADDLE="paddlepaddle-gpu==3.3.1 -i https://www.paddlepaddle.org.cn/packages/stable/cu123/"
PYTHON ?= python3
PADDLE ?= paddlepaddle==3.3.1
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo compare clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt $(PADDLE)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q tests

demo: setup
	$(PY) -m paddlenlp_ext.demo

compare: setup
	$(PY) compare/compare_all.py --random_init

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
