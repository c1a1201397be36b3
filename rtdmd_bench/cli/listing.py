"""``rtdmd-bench list models|rewards|suites|trainers|benchmarks`` (never imports torch-heavy backends)."""

from __future__ import annotations

import typer

from rtdmd_bench.cli.common import console, user_errors

KINDS = ("models", "rewards", "suites", "trainers", "benchmarks")


def registry_for(kind: str):
    if kind == "models":
        from rtdmd_bench.models import MODELS as reg
    elif kind == "rewards":
        from rtdmd_bench.rewards import REWARDS as reg
    elif kind == "suites":
        from rtdmd_bench.suites import SUITES as reg
    elif kind == "trainers":
        from rtdmd_bench.training.registry import TRAINERS as reg
    elif kind == "benchmarks":
        from rtdmd_bench.eval.plan import BENCHMARKS as reg
    else:
        from rtdmd_bench.registry import RegistryError, did_you_mean

        hint = did_you_mean(kind, list(KINDS))
        raise RegistryError(f"unknown list kind {kind!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                            + f" Choose from: {', '.join(KINDS)}")
    return reg


def list_command(kind: str = typer.Argument(..., help="models | rewards | suites | trainers | benchmarks")) -> None:
    """Print a registry: name, one-line description and key metadata."""
    from rtdmd_bench.cli.tables import registry_listing

    with user_errors():
        reg = registry_for(kind)
    for part in registry_listing(kind, list(reg), console.width):
        console.print(part)
