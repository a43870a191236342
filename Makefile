# Two commands on a fresh Debian/Ubuntu machine (root or sudo):
#   make demo   install everything, then run the demo on the embedded piano corpus
#   make test   install everything, then run the test suite
#   make results  regenerate RESULTS.md (about 45 minutes on a 2-core CPU)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := fluidsynth fluid-soundfont-gm libsndfile1 shellcheck

.PHONY: demo test results system venv tfds

demo: venv
	$(PY) -m argmax_music.demo

test: venv tfds
	$(PY) -m pytest -q -x

results: venv
	$(PY) -m argmax_music.experiments.small_scale

# System packages: installed only when missing (apt without recommends: no Qt/GTK).
# shellcheck is for the launch scripts' test.
system:
	@if ! command -v fluidsynth shellcheck >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || \
	   ! ldconfig -p | grep -q libsndfile; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

venv: system $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The optional TFDS source's extra (TensorFlow), so its test runs rather than skips.
tfds: $(VENV)/.installed-tfds

$(VENV)/.installed-tfds: $(VENV)/.installed requirements-tfds.txt
	$(PY) -m pip install -q -r requirements-tfds.txt
	touch $@
