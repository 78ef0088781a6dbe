# The two commands the README opens with: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# uv installs the same requirements several times faster than pip (see docs/development.md).
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python
DEMO_DIR ?= .pier-demo/models
PORT ?= 8080
API_PORT ?= 8090

# Two install levels, each recorded by a stamp file in the venv and redone when the
# project's metadata changes: `demo` is Pier with the demo's runtimes (ONNX Runtime,
# scikit-learn); `test` adds every other runtime and the dev tools. So `make demo` stays
# small, and a later `make test` adds what it lacks instead of seeing a venv and stopping.
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-test demo test bench clean

$(BIN)/uv:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.9'

$(DEMO_STAMP): pyproject.toml setup.py | $(BIN)/uv
	# Editable installs leave the gRPC modules to us: generate them from the .proto files,
	# with the grpcio-tools that the build uses (pyproject.toml's build-system).
	$(UV) -e '.[demo]' 'grpcio-tools==1.80.1'
	$(BIN)/python -m pier.serving.protocols.grpc.generate
	touch $@

$(TEST_STAMP): $(DEMO_STAMP)
	# PyTorch's CPU build first, pinned, through pip: uv would pick another build of it.
	$(BIN)/pip install --quiet torch==2.13.0
	$(UV) -e '.[all,dev]'
	touch $@

install: $(DEMO_STAMP)

install-test: $(TEST_STAMP)

demo: install
	$(BIN)/pier models demo $(DEMO_DIR)
	@echo
	@echo "Try, from another terminal:"
	@echo "  curl -s -d '{\"instances\": [1.0, 2.0, 5.0]}' http://127.0.0.1:$(PORT)/v1/models/half_plus_two:predict"
	@echo "  .venv/bin/pier list"
	@echo
	$(BIN)/pier up --port $(PORT) --api-port $(API_PORT) --deploy examples/services/half_plus_two.json --deploy examples/services/iris.yaml

test: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: install-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pier-demo .pytest_cache .mypy_cache
