"""``rtdmd-bench bench gpu``: the GPU benchmark (``rtdmd_bench.bench.gpu``); heavy imports inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rtdmd_bench.cli.common import split_list

app = typer.Typer(no_args_is_help=True, help="Performance benchmarks that ship with the package.")


@app.command("gpu")
def gpu(
    tiny: bool = typer.Option(False, "--tiny", help="Tiny presets on the CPU: checks the code path in seconds."),
    models: Optional[list[str]] = typer.Option(None, "--models", help="flux2-klein-4b,sd35m (default: both)."),
    batches: str = typer.Option("1,4,8", "--batches", help="Batch sizes, comma-separated."),
    images: int = typer.Option(16, "--images", min=1, help="Images per (model, batch) point."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the transformer first."),
    train: bool = typer.Option(True, "--train/--no-train", help="Also time one stage-2 RTDMD step (FLUX.2)."),
    out: Path = typer.Option(Path("gpu_bench.json"), "--out", help="JSON results file."),
    table: Optional[Path] = typer.Option(None, "--table", help="Also write the markdown table here."),
) -> None:
    """Full-size FLUX.2-klein-4B and SD3.5-M (random bf16 weights from the published configs) at 1024x1024: bare
    diffusers pipeline vs the harness's eval images/s at each batch size, peak GPU memory, and one stage-2 RTDMD
    training step; writes one JSON and prints a markdown table (benchmarks/gpu/README.md)."""
    from rtdmd_bench.bench.gpu import render_table, run_benchmark, write

    # runs inside the CLI's error boundary (cli/__init__.py): a ValueError is one clear line, exit 2
    try:
        sizes = tuple(int(b) for b in split_list([batches]))
    except ValueError:
        sizes = ()
    chosen = split_list(models) or ("flux2-klein-4b", "sd35m")
    unknown = sorted(set(chosen) - {"flux2-klein-4b", "sd35m"})
    if unknown or not sizes or min(sizes) < 1:
        raise ValueError(f"--models must be among flux2-klein-4b, sd35m (got {unknown}) and --batches positive "
                         f"integers (got {batches!r})")
    if not tiny:
        import torch

        if not torch.cuda.is_available():
            raise ValueError("bench gpu needs a CUDA device (use --tiny to check the code path on the CPU)")
    results = run_benchmark(tiny=tiny, models=chosen, batches=sizes, images=images, compile_transformer=compile_,
                            train=train)
    write(results, out)
    text = render_table(results)
    if table is not None:
        from rtdmd_bench.io import atomic_write_text

        atomic_write_text(table, text)
    typer.echo(text)
    typer.echo(f"wrote {out}")
