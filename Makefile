# The two commands of README.md. Both build a project-local virtual
# environment (.venv) from constraints.txt on first use, then reuse it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: report test lint bench sweep clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all]"
	touch $(STAMP)

## make report: the main job, the agreement report in reports/
report: $(STAMP)
	$(BIN)/backprop report

## make test: lint, the unit tests and the conformance suite (Hypothesis profiles "unit-ci" and the suite's "ci")
test: $(STAMP)
	$(BIN)/ruff check reference adapters conformance tests
	$(BIN)/python -m pytest -n auto --hypothesis-profile=unit-ci --conformance-profile=ci

lint: $(STAMP)
	$(BIN)/ruff check reference adapters conformance tests

bench: $(STAMP)
	$(BIN)/backprop bench --suite

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

## make sweep: the suite 20 times with different Hypothesis seeds (SEEDS=...), counting false alarms
SEEDS ?= $(shell seq 1 20)
sweep: $(STAMP)
	@failed=0; for seed in $(SEEDS); do \
	  if $(BIN)/python -m pytest --pyargs backprop_conformance -q -p no:cacheprovider -n auto \
	       --conformance-profile=dev --hypothesis-seed=$$seed > .sweep-$$seed.log 2>&1; \
	  then echo "seed $$seed: pass ($$(tail -1 .sweep-$$seed.log))"; rm -f .sweep-$$seed.log; \
	  else echo "seed $$seed: FAIL, see .sweep-$$seed.log"; failed=$$((failed + 1)); fi; \
	done; echo "$$failed of $(words $(SEEDS)) runs failed"; test $$failed -eq 0
