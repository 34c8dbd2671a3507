# Hearth: two commands do everything on a fresh machine.
#   make run   - create .venv, install Hearth, put the starter model in place, start the GUI
#   make test  - create .venv with the dev extras, fetch the test assets, run every test and check
# llama-cpp-python is compiled by pip once per .venv (several minutes on 2 cores); later runs reuse it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Test assets live outside git and outside .venv, so a new .venv does not fetch them again.
HEARTH_TEST_ASSETS ?= $(HOME)/.cache/hearth-test-assets
export HEARTH_TEST_ASSETS
# llama.cpp build options for pip's compile of llama-cpp-python (the packaging workflow uses the same).
# RPC: the backend that splits one model across machines (hearth rpc-server, --rpc HOST:PORT).
# -U__AMX_INT8__: leave out ggml's AMX matmul, which -march=native turns on for Sapphire Rapids CPUs and which
# crashes (SIGSEGV in ggml_backend_amx_mul_mat, llama.cpp issue 20824, unfixed) on Q4_K models.
CMAKE_ARGS ?= -DGGML_RPC=on -DCMAKE_C_FLAGS=-U__AMX_INT8__ -DCMAKE_CXX_FLAGS=-U__AMX_INT8__
export CMAKE_ARGS
LLAMA_CPP_PYTHON := $(shell sed -n 's/.*"\(llama-cpp-python==[^"]*\)".*/\1/p' pyproject.toml)
# pip's wheel cache does not know CMAKE_ARGS: build without it, once per version and set of options.
LLAMA_STAMP := $(VENV)/.stamp-llama-$(shell echo '$(LLAMA_CPP_PYTHON) $(CMAKE_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: run test lint check-core package clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

$(LLAMA_STAMP): | $(PY)
	$(PY) -m pip install --quiet --no-cache-dir --force-reinstall --no-deps '$(LLAMA_CPP_PYTHON)'
	touch $@

$(VENV)/.stamp-app: pyproject.toml $(LLAMA_STAMP) | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(LLAMA_STAMP) | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.stamp-app

run: $(VENV)/.stamp-app
	$(BIN)/hearth starter
	$(BIN)/hearth

test: $(VENV)/.stamp-dev
	$(PY) -m tests.assets
	$(BIN)/ruff check app tests
	$(BIN)/mypy
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check app tests
	$(BIN)/mypy

package: $(VENV)/.stamp-app
	$(PY) -m pip install --quiet -e '.[packaging]'
	$(PY) packaging/make_icons.py build/icons
	$(PY) -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/hearth.spec
	$(PY) packaging/make_installer.py

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
