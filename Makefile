# Two commands on a fresh Debian/Ubuntu machine (root or sudo):
#   make demo   install everything, then run the demo on the embedded piano corpus
#   make test   install everything, then lint (ruff) and run the whole test suite
#   make test-fast  the quicker loop while coding: `pytest -m "not slow"`, ~1.5 min (the full suite: ~8 min on 2 cores)
#   make results  regenerate RESULTS.md: 17 variants x 3 seeds of 2,000 steps, one run per core: an estimated
#                 7.5 hours on 2 CPU cores (7.7 minutes on one H200, README.md says how); resumable (finished
#                 runs in runs/small_scale are kept), e.g. `nohup make results > results.log &`.
#                 `python -m argmax_music.experiments.small_scale --quick` checks every table in minutes.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := fluidsynth fluid-soundfont-gm libsndfile1 shellcheck g++

.PHONY: demo test test-fast lint results system venv testtools tfds browser

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

# System packages: installed only when missing (apt without recommends: no Qt/GTK).
# shellcheck is for the launch scripts' test; g++ builds the native CPU sampler (argmax_music/models/native.py).
system:
	@if ! command -v fluidsynth shellcheck c++ >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || \
	   ! ldconfig -p | grep -q libsndfile; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

venv: system $(VENV)/.installed $(VENV)/.installed-eval

$(VENV)/.installed: requirements.txt pyproject.toml
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
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } || \
	  echo "Chromium could not be installed: the browser test will be skipped"
	$(PY) -m pip install -q -r requirements-browser.txt
	touch $@
