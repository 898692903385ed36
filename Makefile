# The kit's commands. Each one creates and fills .venv on first use; later
# runs reuse it. Run `make help` for the list.

PYTHON ?= python3
# `make lab LAB_DIR=build/exercises` opens the learner copies instead
LAB_DIR ?= notebooks
VENV   := .venv
BIN    := $(VENV)/bin
COURSE := $(VENV)/.course-installed
DEV    := $(VENV)/.dev-installed
TOOLS  := $(VENV)/.tools-installed
# reveal.js and MathJax for `make slides` and `make site`, pinned, from the npm registry (see utils/publish.py)
WEB    := $(VENV)/share/course-web
REVEAL_JS_VERSION := 5.2.1
MATHJAX_VERSION   := 3.2.2

# Quieter TensorFlow start-up logs in every command below.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help lessons test lab clean-notebooks doctor slides exercises site

help:  ## show the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# The version, machine and venv-module checks come first, so that another Python, a machine TensorFlow 2.21 has
# no build for, or a Python without venv never leaves a half-made .venv behind; a venv that fails anyway is removed.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "error: the kit \
	needs Python 3.11, and '$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo 'not found'). Install Python 3.11, \
	then run: make $(or $(MAKECMDGOALS),help) PYTHON=python3.11" >&2; exit 1; }
	@$(PYTHON) setup/check_machine.py
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "error: '$(PYTHON)' has no venv module to create .venv \
	with (Debian and Ubuntu ship it apart). Install it: sudo apt install python3.11-venv, then run: make \
	$(or $(MAKECMDGOALS),help) PYTHON=$(PYTHON)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "error: '$(PYTHON) -m venv $(VENV)' failed, for the reason \
	above; nothing was kept. Fix it, then run: make $(or $(MAKECMDGOALS),help) PYTHON=$(PYTHON)" >&2; exit 1; }
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

# Debian tools the tests use (shellcheck for setup/*.sh, rsync for `gpubox sync`, chromium for the browser tests of
# utils.serve and of the course site); CI runs as root. A change here runs the checks again on machines made earlier.
$(TOOLS): Makefile | $(BIN)/python
	(command -v shellcheck && command -v /usr/bin/chromium && command -v rsync) >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck chromium rsync)
	touch $@

# Only the files the pages load (npm checks each package against the registry's checksum); a change here
# fetches them again, into a new folder that replaces the old one only once it is complete (offline, the
# copy that works stays). Without npm, root on Debian or Ubuntu gets Debian's; anyone else is told how to install it.
$(WEB)/.installed: Makefile | $(BIN)/python
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; } || { echo "make: slides and the site need npm \
	(Node.js) once, to fetch reveal.js and MathJax from the npm registry: install Node.js (Debian or Ubuntu: sudo \
	apt install npm; macOS: brew install node; or nodejs.org), then run the same command again." >&2; exit 1; }
	rm -rf $(WEB).new && mkdir -p $(WEB).new/npm $(WEB).new/reveal.js $(WEB).new/mathjax
	(cd $(WEB).new/npm && npm pack --loglevel=error reveal.js@$(REVEAL_JS_VERSION) mathjax@$(MATHJAX_VERSION) >/dev/null) || \
		(echo "make: could not fetch reveal.js and MathJax from the npm registry (slides and the site need them" \
		      "once; npm's error is above): check the connection and run the same command again." >&2; \
		 rm -rf $(WEB).new; exit 1)
	tar -xzf $(WEB).new/npm/reveal.js-$(REVEAL_JS_VERSION).tgz -C $(WEB).new/reveal.js --strip-components=1 \
		package/LICENSE package/dist/reveal.js package/dist/reveal.css package/dist/theme/white.css \
		package/dist/theme/fonts/source-sans-pro
	tar -xzf $(WEB).new/npm/mathjax-$(MATHJAX_VERSION).tgz -C $(WEB).new/mathjax --strip-components=1 \
		package/LICENSE package/es5/tex-svg.js && mv $(WEB).new/mathjax/es5/tex-svg.js $(WEB).new/mathjax/ && \
		rmdir $(WEB).new/mathjax/es5
	rm -rf $(WEB).new/npm && rm -rf $(WEB) && mv $(WEB).new $(WEB)
	touch $@

test: $(DEV) $(TOOLS) $(WEB)/.installed  ## run the whole test suite (unit tests and every lesson in smoke mode)
	$(BIN)/python -m pytest

slides: $(COURSE) $(WEB)/.installed  ## reveal.js slides of every lesson into build/slides/ (from build/lessons/)
	$(BIN)/python -m utils.publish slides

exercises: $(COURSE)  ## learner copies of the lessons, without the solutions, into build/exercises/
	$(BIN)/python -m utils.publish exercises

site: $(COURSE) $(WEB)/.installed  ## the course as a static site into build/site/ (lessons, contents, guide)
	$(BIN)/python -m utils.publish site

# As root (a container, some cloud images) Jupyter refuses to start unless told to; it still listens on
# 127.0.0.1 only and still asks for its token.
LAB_AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(COURSE)  ## start JupyterLab on the notebooks, or LAB_DIR=build/exercises (localhost only)
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir="$(LAB_DIR)" $(LAB_AS_ROOT)

doctor: $(COURSE)  ## check this machine for the course (GPU, versions, disk, downloads)
	$(BIN)/python -m utils.doctor

clean-notebooks: $(COURSE)  ## strip outputs and execution counts from the lessons (not other notebooks there)
	$(BIN)/python -m utils.lessons clean
