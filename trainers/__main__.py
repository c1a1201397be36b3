"""``python -m rtdmd_bench.trainers [train options]`` / ``torchrun -m rtdmd_bench.trainers ...``: the ``train``
command alone (identical to ``rtdmd-bench train``)."""

import typer

from rtdmd_bench.cli.train import train

if __name__ == "__main__":
    typer.run(train)
