# The two commands of the README: `make serve [PORT=8000] [HOST=127.0.0.1]` and `make test`. Both build .venv on first use.
# `make test-busy`: `make test` three times in a row beside a CPU hog (scripts/test-busy).
# `make test-image`: build the CPU image and run the README's job through its containers (scripts/test-image).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test test-busy test-image lint install install-test

serve: install
	$(BIN)/steadyfit serve --host $(HOST) --port $(PORT)

test: install-test lint
	scripts/test-services
	scripts/test-browser
	$(BIN)/pytest

test-busy: install-test
	MAKE="$(MAKE)" scripts/test-busy

test-image:
	scripts/test-services
	scripts/test-image

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/pip
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@ $(VENV)/.installed
