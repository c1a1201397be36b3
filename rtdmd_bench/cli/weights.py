"""``rtdmd-bench weights make-tiny|fetch|verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rtdmd_bench.cli.common import console, user_errors

app = typer.Typer(help="Model and reward weights under one root (--weights DIR or $RTDMD_BENCH_WEIGHTS).",
                  no_args_is_help=True)


@app.command("make-tiny")
def make_tiny(directory: Path = typer.Argument(..., help="Where to write the tiny random weights.")) -> None:
    """Write tiny random weights of every registered model and reward in the production layout."""
    from rtdmd_bench.testing import write_tiny_weights

    root = write_tiny_weights(directory)
    console.print(f"tiny random weights written to {root}")


@app.command("fetch")
def fetch(name: str = typer.Argument(..., help="Model or reward name."),
          weights: Optional[Path] = typer.Option(None, help="Weights root (default $RTDMD_BENCH_WEIGHTS).")) -> None:
    """Download NAME's files into the layout (Hugging Face Hub; OCR models from RapidOCR's hosting; needs network)."""
    from rtdmd_bench.models import MODELS
    from rtdmd_bench.rewards import REWARDS
    from rtdmd_bench.weights import resolve_root

    root = resolve_root(weights)
    with user_errors():
        if name in MODELS:
            from rtdmd_bench.models.fetch import fetch_model_weights as fetcher
        elif name in REWARDS:
            from rtdmd_bench.rewards.fetch import fetch_reward_weights as fetcher
        else:
            from rtdmd_bench.registry import RegistryError, did_you_mean

            hints = did_you_mean(name, MODELS.names() + REWARDS.names())
            raise RegistryError(f"no model or reward named {name!r}" + (f"; did you mean {hints[0]!r}?" if hints else ""))
        paths = fetcher(name, root)
    console.print(f"fetched {name} into {root}: {len(paths) if paths else 0} item(s)")


@app.command("verify")
def verify(weights: Optional[Path] = typer.Option(None, help="Weights root (default $RTDMD_BENCH_WEIGHTS).")) -> None:
    """Check the files present under the root: sizes and sha256 where known."""
    from rtdmd_bench.rewards.fetch import verify_weights
    from rtdmd_bench.weights import TINY, resolve_root

    root = resolve_root(weights)
    if str(weights) == TINY:  # every part of the tiny cache (built on first use)
        from rtdmd_bench.testing import write_tiny_weights

        write_tiny_weights(root)
    with user_errors():
        checks = verify_weights(root)
    for c in checks:
        mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
        console.print(f"{mark} {c.reward}: {c.path} — {c.status}{f' ({c.detail})' if c.detail else ''}",
                      highlight=False)
    if any(not c.ok for c in checks):
        raise typer.Exit(1)
    console.print(f"weights under {root}: every present file verified")
