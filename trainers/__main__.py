"""``python -m trainers [train options]`` / ``torchrun -m trainers ...``: the ``train`` command alone
(identical to ``rtdmd-bench train``)."""

import typer

from rtdmd_bench.cli.train import train

if __name__ == "__main__":
    typer.run(train)
