# One-command set-up: `make test` and `make demo` create .venv on first use.
VENV      := .venv
VPY       := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
export MUJOCO_GL ?= egl

.PHONY: install test demo lint results clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@set -e; \
	if [ ! -x $(VPY) ]; then \
	  PY=$$(bash launch/find_python.sh) || { echo "error: no Python >= 3.12 found (tried \$$PYTHON, python3.12+, pyenv); install one and retry" >&2; exit 1; }; \
	  echo "using $$PY"; \
	  $$PY -m venv $(VENV); \
	fi; \
	$(VPY) -m pip install -q --upgrade pip; \
	$(VPY) -m pip install -q -e '.[dev]'; \
	touch $(STAMP)

test: install
	$(VPY) -m ruff check .
	$(VPY) -m pytest -q -p no:cacheprovider tests

demo: install
	$(VENV)/bin/vlash demo --out runs/demo

results: install
	$(VENV)/bin/vlash results --out docs

lint: install
	$(VPY) -m ruff check .

clean:
	rm -rf $(VENV) runs
