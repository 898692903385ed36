# The kit's commands. Each one creates and fills .venv on first use; later
# runs reuse it. Run `make help` for the list.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
COURSE := $(VENV)/.course-installed
DEV    := $(VENV)/.dev-installed
TOOLS  := $(VENV)/.tools-installed

# Quieter TensorFlow start-up logs in every command below.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help lessons test lab clean-notebooks doctor

help:  ## show the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(COURSE): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(DEV): requirements-dev.txt $(COURSE)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

lessons: $(COURSE)  ## run every lesson top to bottom in sample mode into build/lessons/
	$(BIN)/python -m utils.lessons run --out build/lessons

# Debian tools the tests use (shellcheck for setup/*.sh, chromium for the browser test of
# utils.serve); CI runs as root. A change here runs the checks again on machines made earlier.
$(TOOLS): Makefile | $(BIN)/python
	(command -v shellcheck && command -v /usr/bin/chromium) >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck chromium)
	touch $@

test: $(DEV) $(TOOLS)  ## run the whole test suite (unit tests and every lesson in smoke mode)
	$(BIN)/python -m pytest

lab: $(COURSE)  ## start JupyterLab on the notebooks (localhost only)
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks

doctor: $(COURSE)  ## check this machine for the course (GPU, versions, disk, downloads)
	$(BIN)/python -m utils.doctor

clean-notebooks: $(COURSE)  ## strip outputs and execution counts from notebooks/
	$(BIN)/python -m utils.lessons clean notebooks/*.ipynb
