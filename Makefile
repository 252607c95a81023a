# Two commands do everything on a fresh machine (Python >= 3.10 with venv):
#   make localnet   install into .venv, then run the local simulated subnet
#   make test       install into .venv, then lint, type-check and run the test suite
# CPU installs pin torch with constraints.txt so pip never pulls the multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install install-gpu system-packages localnet test lint typecheck bench lock image image-cpu clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# GPU hosts: the default Linux torch wheel on PyPI is the CUDA build; no CPU pin.
install-gpu:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

SCENARIO ?= scenarios/quick.toml

localnet: $(STAMP)
	$(VENV)/bin/gauntlet localnet --localnet.scenario $(SCENARIO) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check gauntlet protocol neurons tests bench docker
	$(VENV)/bin/ruff format --check gauntlet protocol neurons tests bench docker

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# docker-compose and chromium, which some tests drive; installed only when missing.
system-packages:
	bash .ci/system-packages

test: system-packages lint typecheck
	$(VENV)/bin/pytest --durations=25 $(ARGS)

bench: $(STAMP)
	$(PY) bench/storage.py

# The node images' pinned runtime dependencies, from this (CPU, tested) environment.
lock: $(STAMP)
	$(PY) docker/lock.py > docker/requirements.lock

# Container images (docs/deployment.md); need a Docker engine.
image:
	docker build -f docker/Dockerfile -t gauntlet:cuda .

image-cpu:
	docker build -f docker/Dockerfile --build-arg VARIANT=cpu -t gauntlet:cpu .

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
