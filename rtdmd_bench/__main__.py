"""``python -m rtdmd_bench``: the CLI (also what ``torchrun -m rtdmd_bench eval ...`` runs on every rank)."""

from rtdmd_bench.cli import main

if __name__ == "__main__":
    main()
