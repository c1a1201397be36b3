# Two entry points (see README): `make demo` runs the main job on tiny weights; `make test` runs the tests.
# Both set everything up first (scripts/setup_env.sh is idempotent and never replaces an installed torch).
VENV ?= .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test bench lint toy

setup:
	@VENV=$(VENV) bash scripts/setup_env.sh

demo: setup
	$(BIN)/rtdmd-bench eval --model tiny-flux2 --suite smoke --weights tiny --out runs/demo

test: setup
	$(BIN)/python -m pytest -q -p no:randomly -n 2 --dist loadfile --durations=15

bench: setup
	$(BIN)/python -m pytest benchmarks -q -s --benchmark-columns=min,median,mean,rounds

lint: setup
	$(BIN)/ruff check rtdmd_bench trainers tests benchmarks

toy: setup
	$(BIN)/rtdmd-bench toy --seeds 3 --json docs/toy.json --plot docs/toy.png
	$(BIN)/rtdmd-bench toy --sweep beta --seeds 3 --json docs/toy_beta.json --plot docs/toy_beta.png
	$(BIN)/rtdmd-bench toy --sweep dim --seeds 3 --json docs/toy_dim.json --plot docs/toy_dim.png
	$(BIN)/rtdmd-bench toy --docs
