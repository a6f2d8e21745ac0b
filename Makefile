# The two set-up commands of the README:
#   make demo   end-to-end analysis on the embedded synthetic persona data
#   make test   ruff and the whole test suite (what CI runs)
# and the documentation site:
#   make docs   HTML in build/docs, notebooks executed (PERSONAX_SMOKE=1: at smoke size;
#               PERSONAX_DOCS_EXECUTE=0: shown as stored, without outputs)
# Each creates or reuses .venv and installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= personax-demo
# the suite runs in one worker process per usable core (pytest-xdist), a test file per worker
PYTEST_ARGS ?= -n auto --dist loadfile
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

DOCS_OUT ?= build/docs
PERSONAX_DOCS_EXECUTE ?= 1

.PHONY: demo test env docs clean

env:
	@bash tools/bootstrap.sh test,notebooks,dev,docs

demo:
	@bash tools/bootstrap.sh
	$(VENV)/bin/personax demo --out $(OUT)

test: env
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

docs:
	@bash tools/bootstrap.sh docs,notebooks
	PERSONAX_DOCS_EXECUTE=$(PERSONAX_DOCS_EXECUTE) $(PY) -m sphinx -b html -W --keep-going docs $(DOCS_OUT)

clean:
	rm -rf $(VENV) build dist *.egg-info
