# The two set-up commands of the README:
#   make demo   end-to-end analysis on the embedded synthetic persona data
#   make test   ruff and the whole test suite (what CI runs)
# Both create or reuse .venv and install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= personax-demo
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

.PHONY: demo test env clean

env:
	@bash tools/bootstrap.sh test,notebooks,dev

demo:
	@bash tools/bootstrap.sh
	$(VENV)/bin/personax demo --out $(OUT)

test: env
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
