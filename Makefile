# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv and install deattack on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_TFDS := $(abspath ../shared/tensorflow_datasets)
ifeq ($(wildcard $(SHARED_TFDS)),)
else
export TFDS_DATA_DIR ?= $(SHARED_TFDS)
endif

DEMO_ARGS ?= --model resnet20 --pixels 1 --mode untargeted --images 10 --out runs/demo

.PHONY: demo test lint install clean

$(BIN)/deattack: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt -e ".[test]"
	touch $@

install: $(BIN)/deattack

demo: $(BIN)/deattack
	$(BIN)/deattack attack $(DEMO_ARGS)

# One pytest worker a core (pytest-xdist), each test file on one worker so its fixtures
# compile once. Writes pytest's own exit code to .pytest-exit-code so .ci/run can tell
# "no tests collected" (5) from a failure.
test: $(BIN)/deattack
	@rm -f .pytest-exit-code
	@$(BIN)/python -m pytest -q -n auto --dist loadfile; rc=$$?; echo $$rc > .pytest-exit-code; exit $$rc

lint: $(BIN)/deattack
	$(BIN)/python -m pip install --quiet --constraint constraints.txt -e ".[lint]"
	$(BIN)/ruff check deattack tests configs scripts

clean:
	rm -rf $(VENV) runs .pytest_cache .pytest-exit-code
