# Two commands on a fresh machine:  `make demo` (install, get the AKG into AKG_HOME/data, ingest, stats)  and  `make test`.
VENV   ?= .venv
PYTHON ?= python3
AKG     = $(VENV)/bin/akg
# The reference copy beside a checkout (no network needed); otherwise `akg dataset fetch` downloads.
SHARED ?= ../shared

.PHONY: install demo test test-neo4j test-all docs clean

install: $(VENV)/.installed

# torch is pinned and installed first: a looser requirement pulls several GB of CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

demo: install
	@if [ -f $(SHARED)/AKG_dataset/AKG_pruned.tsv ]; then $(AKG) dataset fetch --from $(SHARED); else $(AKG) dataset fetch; fi
	D="$$($(AKG) dataset path)" && $(AKG) ingest "$$D/AKG_pruned.tsv" "$$D/AKG_raw.tsv" "$$D/AKG_test.tsv"
	$(AKG) stats

test: install
	$(VENV)/bin/pytest -m "not slow"

# The tests that talk to a graph server, against Neo4j 5.26 Community instead of the embedded server
# (neo4j-test-server/: Neo4j's test harness from Maven Central; needs Java 17+ and Maven).
test-neo4j: install
	AKG_TEST_SERVER=neo4j $(VENV)/bin/pytest -m "not slow"

test-all: install
	$(VENV)/bin/pytest

# The README's CLI reference, generated from the commands' click help (docs/cli_reference.py), and
# docs/api.md's reference from the API's signatures and docstrings (docs/api_reference.py);
# tests/test_readme_cli.py and tests/test_docs.py fail when they are stale.
docs: install
	$(VENV)/bin/cog -r README.md
	$(VENV)/bin/cog -r -I docs docs/api.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
