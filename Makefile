# Two commands do all the set-up on a fresh machine:
#   make demo   install into .venv, fetch models if needed, run the main job on the sample clip
#   make test   install into .venv, fetch models if needed, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED := $(abspath $(wildcard ../shared))
OUT ?= out

# Beside a checkout with ../shared (CI, development) models and clips are read from there;
# elsewhere `dfm models download` fills the user cache first.
ifneq ($(SHARED),)
export DFM_ASSETS ?= $(SHARED)/models
export DFM_SAMPLE_VIDEO ?= $(SHARED)/data/videos/pexels_wolfganglanger_woman_emotions_01.mp4
endif

.PHONY: install install-browser models demo test bench gui clean

$(BIN)/dfm: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[test,web,ray]"
	touch $@

# the web tool's browser test drives Debian's chromium through Playwright (Playwright's own browser
# download cannot work here); needs root or sudo, skipped when chromium is already there
/usr/bin/chromium:
	if command -v apt-get >/dev/null; then (apt-get update -q && apt-get install -y -q chromium) || \
	  (sudo apt-get update -q && sudo apt-get install -y -q chromium) || \
	  echo "warning: could not install chromium: the browser test will skip (fail under CI)"; fi

install-browser: /usr/bin/chromium

install: $(BIN)/dfm

models: install
	$(BIN)/dfm models download

demo: models
	$(BIN)/python -m dfm.app.cli.demo --output $(OUT)/demo

test: models install-browser
	$(BIN)/python -m pytest -q

gui: models
	$(BIN)/dfm gui --open

bench: models
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
