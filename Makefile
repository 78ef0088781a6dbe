# The two commands the README opens with: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= .pier-demo/models
PORT ?= 8080

.PHONY: install demo test lint typecheck bench clean

$(BIN)/pier: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of PyTorch first, pinned, so that nothing pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,dev]'
	# Editable installs leave the gRPC modules to us: generate them from the .proto files.
	$(BIN)/python -m pier.serving.protocols.grpc.generate
	touch $(BIN)/pier

install: $(BIN)/pier

demo: install
	$(BIN)/pier models demo $(DEMO_DIR)
	@echo
	@echo "Try, from another terminal:"
	@echo "  curl -s -d '{\"instances\": [1.0, 2.0, 5.0]}' http://127.0.0.1:$(PORT)/v1/models/half_plus_two:predict"
	@echo "  .venv/bin/pier list"
	@echo
	$(BIN)/pier up --port $(PORT) --deploy examples/services/half_plus_two.json --deploy examples/services/iris.yaml

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pier-demo .pytest_cache .mypy_cache
