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
def fetch(name: str = typer.Argument(..., help="Model or reward name, or a Hugging Face repo id OWNER/REPO[@revision]."),
          weights: Optional[Path] = typer.Option(None, help="Weights root (default $RTDMD_BENCH_WEIGHTS)."),
          dry_run: bool = typer.Option(False, "--dry-run", help="List the files and bytes that would be downloaded "
                                       "(from hub metadata), download nothing."),
          no_lora: bool = typer.Option(False, "--no-lora", help="Skip the model entry's LoRA files.")) -> None:
    """Download NAME's files from the Hugging Face Hub (needs network): for a generator only what its pipeline loads
    (model_index.json components, one weight set, no single-file or fp16 duplicates). A catalogue entry goes into
    the weights root, a bare repo id into the Hugging Face cache (where `eval --model OWNER/REPO` finds it); OCR models
    come from RapidOCR's hosting."""
    from rtdmd_bench.models import MODELS
    from rtdmd_bench.models.resolve import REPO_ID
    from rtdmd_bench.rewards import REWARDS
    from rtdmd_bench.weights import resolve_root

    root = resolve_root(weights)
    with user_errors():
        if name in MODELS or (REPO_ID.match(name) and name not in REWARDS):
            from rtdmd_bench.models.fetch import fetch_model_weights

            done = fetch_model_weights(name, root, include_lora=not no_lora, dry_run=dry_run)
        elif name in REWARDS:
            if dry_run:
                raise ValueError(f"--dry-run lists generator pipelines; reward {name!r} downloads "
                                 f"{', '.join(f'{r}: {f}' for r, f, _ in REWARDS.spec(name).fetch) or 'nothing'}")
            from rtdmd_bench.rewards.fetch import fetch_reward_weights

            done = fetch_reward_weights(name, root)
        else:
            from rtdmd_bench.registry import RegistryError, did_you_mean

            hints = did_you_mean(name, MODELS.names() + REWARDS.names())
            raise RegistryError(f"no model or reward named {name!r}" + (f"; did you mean {hints[0]!r}?" if hints
                                else "") + " (a Hugging Face repo id is OWNER/REPO[@revision])")
    if dry_run:
        for plan in done:
            console.print(plan.render(), highlight=False)
        return
    console.print(f"fetched {name} into {root}: {len(done) if done else 0} item(s)")


@app.command("verify")
def verify(weights: Optional[Path] = typer.Option(None, help="Weights root (default $RTDMD_BENCH_WEIGHTS).")) -> None:
    """Check the files present under the root: sizes and sha256 where known."""
    from rtdmd_bench.rewards.fetch import verify_weights
    from rtdmd_bench.weights import TINY, resolve_root

    root = resolve_root(weights)
    if str(weights) == TINY:  # every part of the tiny cache (built on first use)
        from rtdmd_bench.testing import write_tiny_weights

        write_tiny_weights(root)
    from rtdmd_bench.weights import is_tiny

    tiny = is_tiny(root)
    with user_errors():
        checks = verify_weights(root, published=not tiny)
    if tiny:
        console.print(f"{root} holds tiny random weights: presence checked; the published files' sizes and sha256 "
                      f"do not apply", highlight=False)
    for c in checks:
        mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
        console.print(f"{mark} {c.reward}: {c.path} — {c.status}{f' ({c.detail})' if c.detail else ''}",
                      highlight=False)
    if any(not c.ok for c in checks):
        raise typer.Exit(1)
    console.print(f"weights under {root}: every present file verified")
