# The two commands of the README. Both set up .venv themselves (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test bootstrap lock bench clean

bootstrap:
	@bash scripts/bootstrap.sh

## run: the main job on the embedded default (local store, ephemeral Prefect API, CPU)
run: bootstrap
	$(VENV)/bin/vigil run

## test: the whole test suite
test: bootstrap
	@bash scripts/browser.sh
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: the benchmarks under benchmarks/ (results in benchmarks/results/*.json)
bench: bootstrap
	$(PY) benchmarks/frame_sampling.py
	$(PY) benchmarks/crawl_ingest.py
	$(PY) benchmarks/dvc_push.py
	$(PY) benchmarks/tiny_learning.py --baseline --workdir benchmarks/.work/tiny
	$(PY) benchmarks/train_speed.py --project benchmarks/.work/tiny/project
	$(PY) benchmarks/evaluate_speed.py --model benchmarks/.work/tiny/project/build/grpo --workspace benchmarks/.work/tiny

## lock: refresh constraints.txt from the current venv
lock:
	{ echo "# Exact versions that install together in about two minutes (pip freeze of a working venv)."; \
	  echo "# Unpinned, pip wanders through dozens of boto3/aiobotocore versions. Regenerate with make lock."; \
	  $(PY) -m pip freeze --exclude-editable | grep -vi '^torch=='; echo "torch==2.13.0"; } > constraints.txt

clean:
	rm -rf .vigil
