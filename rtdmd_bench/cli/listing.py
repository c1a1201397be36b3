"""``rtdmd-bench list models|families|rewards|suites|trainers|benchmarks`` (never imports torch-heavy backends).

Entries added by installed plugins (entry points, ``rtdmd_bench.registry``) are listed with their distribution;
plugins that failed to load are reported below the table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rtdmd_bench.cli.common import console, user_errors

KINDS = ("models", "families", "rewards", "suites", "trainers", "benchmarks")


def registry_for(kind: str):
    if kind == "models":
        from rtdmd_bench.models import MODELS as reg
    elif kind == "families":
        import rtdmd_bench.models  # noqa: F401  (the catalogue registers the family modules)
        from rtdmd_bench.models.family import FAMILIES as reg
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


def list_command(kind: str = typer.Argument(..., help="models | families | rewards | suites | trainers | benchmarks"),
                 suites_dir: Optional[list[Path]] = typer.Option(
                     None, "--suites-dir", help="Also list the user suites in DIR (<name>/suite.yaml).")) -> None:
    """Print a registry: name, one-line description and key metadata (sampling defaults for models; `families`
    shows the defaults a hub repo id or a local folder of that family gets)."""
    print_registry(kind, suites_dir)


def print_registry(kind: str, suites_dir: Optional[list[Path]] = None) -> None:
    """The body of ``list``; ``cli.main`` calls it directly for ``rtdmd-bench list KIND`` (no Typer parsing)."""
    import warnings

    from rtdmd_bench.cli.tables import registry_listing

    with user_errors():
        if suites_dir:
            from rtdmd_bench.suites import add_suites_dir

            for d in suites_dir:
                add_suites_dir(d)
        reg = registry_for(kind)
    with warnings.catch_warnings():  # plugin problems are printed below the listing instead
        warnings.simplefilter("ignore")
        specs = list(reg)
    origin = getattr(reg, "plugin_origin", {})
    notes = {name: f" (plugin: {dist})" for name, dist in origin.items()}
    for part in registry_listing(kind, specs, console.width, notes):
        console.print(part)
    for problem in getattr(reg, "plugin_errors", []):
        console.print(f"warning: {problem}", style="yellow", markup=False, highlight=False)
