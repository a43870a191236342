# Two commands on a fresh Debian/Ubuntu machine (root or sudo):
#   make demo   install everything, then run the demo on the embedded piano corpus
#   make test   install everything, then lint (ruff) and run the whole test suite
#   make test-fast  the quicker loop while coding: `pytest -m "not slow"`, ~1.5 min (the full suite: ~8 min on 2 cores)
#   make results  regenerate RESULTS.md: 26 variants x 3 seeds of 2,000 steps, one run per core: about 5 hours
#                 on 2 CPU cores, 7-8 minutes a run (17 of them: 7.7 minutes on one H200, README.md says how);
#                 resumable: each finished run is recorded in results/runs (commit it: kept on any machine), an
#                 interrupted one resumes from runs/small_scale; e.g. `nohup make results > results.log &`.
#                 `python -m argmax_music.experiments.small_scale --quick` checks every table in minutes.
#   make pretrained  retrain the shipped model (pretrained/piano, its card, RESULTS.md table (f)): a 3.4-hour corpus,
#                 two levels, the prior, the one-level comparison and the prior from two more seeds; resumable
#                 (about 8 hours on 2 CPU cores); the card says how long it took.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends
# The oldest Python the pinned numpy/jax/flax/orbax/grain install on: pyproject.toml's requires-python.
PYTHON_MIN := $(shell sed -n 's/^requires-python = ">=\([0-9.]*\)".*/\1/p' pyproject.toml)

.PHONY: demo test test-fast lint results pretrained python pythoncheck system venv testtools tfds browser

demo: venv
	$(PY) -m argmax_music.demo

test: venv testtools tfds browser lint
	$(PY) -m pytest -q -x

test-fast: venv testtools
	$(PY) -m pytest -q -x -m "not slow"

lint: venv testtools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

results: venv
	$(PY) -m argmax_music.experiments.small_scale --parallel=0

pretrained: venv
	$(PY) -m argmax_music.pretrained

# Python itself, when `python3` is missing (another PYTHON is the user's to install).
python:
	$(if $(shell command -v $(PYTHON)),,$(if $(filter python3,$(PYTHON)),$(APT_INSTALL) python3))

# Stops before anything is installed when PYTHON is older than the pins need (one line, by make's $(error)).
pythoncheck: python
	$(if $(filter ok,$(python_status)),,$(error $(PYTHON) is $(python_status): argmax_music needs Python \
	  >= $(PYTHON_MIN) (install it, e.g. apt-get install python$(PYTHON_MIN), and set PYTHON=python$(PYTHON_MIN))))

python_status = $(or $(shell $(PYTHON) -c 'import sys; v = sys.version_info; \
  print("ok" if v[:2] >= tuple(map(int, "$(PYTHON_MIN)".split("."))) else "%d.%d.%d" % v[:3])' 2>/dev/null),missing)

# System packages, each checked on its own and installed only when missing (apt without recommends: no Qt/GTK).
# shellcheck is for the launch scripts' test; g++ builds the native CPU sampler (argmax_music/models/native.py);
# python3.X-venv holds Debian's ensurepip, without which `python3 -m venv` fails.
unless = $(if $(shell $(2) >/dev/null 2>&1 && echo ok),,$(1))
MISSING = $(strip \
  $(call unless,fluidsynth,command -v fluidsynth) \
  $(call unless,fluid-soundfont-gm,test -f /usr/share/sounds/sf2/FluidR3_GM.sf2) \
  $(call unless,libsndfile1,PATH="$$PATH:/sbin:/usr/sbin" ldconfig -p | grep -q libsndfile) \
  $(call unless,shellcheck,command -v shellcheck) \
  $(call unless,g++,command -v c++) \
  $(call unless,$(shell $(PYTHON) -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])'),\
    $(PYTHON) -c 'import ensurepip'))

system: pythoncheck
	$(if $(MISSING),$(APT_INSTALL) $(MISSING))

venv: $(VENV)/.installed $(VENV)/.installed-eval

$(VENV)/.installed: requirements.txt pyproject.toml | system
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# Musical evaluation: basic-pitch without its declared dependencies (they pin TensorFlow; its ONNX model runs
# on onnxruntime).
$(VENV)/.installed-eval: $(VENV)/.installed requirements-eval.txt
	$(PY) -m pip install -q -r requirements-eval.txt
	$(PY) -m pip install -q --no-deps basic-pitch==0.4.0
	touch $@

# pytest, ruff and the notebook runner: `make test` needs them, `make demo` does not.
testtools: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

# The optional TFDS source's extra (TensorFlow), so its test runs rather than skips.
tfds: $(VENV)/.installed-tfds

$(VENV)/.installed-tfds: $(VENV)/.installed requirements-tfds.txt
	$(PY) -m pip install -q -r requirements-tfds.txt
	touch $@

# The listening page's browser test: Debian's Chromium (installed only when missing; without it the test
# skips, naming why) and Playwright's Python package, which drives that Chromium.
browser: $(VENV)/.installed-browser

$(VENV)/.installed-browser: $(VENV)/.installed requirements-browser.txt
	@command -v chromium >/dev/null || { $(APT_INSTALL) chromium; } || \
	  echo "Chromium could not be installed: the browser test will be skipped"
	$(PY) -m pip install -q -r requirements-browser.txt
	touch $@
