"""``rtdmd-bench toy [--methods a,b] [--seeds 3] [--json out.json] [--plot out.png] [--quick]``: the analytic
benchmark of the trainers (rtdmd_bench.toy). Prints mean ± std over seeds next to the exact noise floors.

``--sweep beta`` (the calibrated mode over β × reward) and ``--sweep dim`` (the paper-weight RTDMD over dimension ×
reward scale, with the β-meter) write their own JSON and figure; ``--docs`` regenerates docs/toy.md and the README's
toy section from the three JSON files (``make toy`` runs all four)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

SWEEPS = ("beta", "dim")


def _floats(text: Optional[str], flag: str) -> Optional[list[float]]:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint=flag) from None


def toy(
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated subset (default: all). "
                                          "teacher, ac_dmd, dmd, rtdmd, grpo, bp, rtdmd_pg_all_steps, rtdmd_no_pg, "
                                          "rtdmd_no_bp, rtdmd_no_dm, rtdmd_no_consistency, rtdmd_exact_kl, "
                                          "rtdmd_calibrated."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Independent seeds (pretraining, training and evaluation)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the figure (PNG) here."),
    quick: bool = typer.Option(False, "--quick", help="Tiny schedules (seconds; for tests, numbers not converged)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="β of the tilted target p~ ∝ p·exp(β r) (default 1)."),
    reward: Optional[str] = typer.Option(None, "--reward", help="bump (default) | linear (direction (0, 1))."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="exact (default) | mlp (imperfect pretrained MLP)."),
    dim: Optional[int] = typer.Option(None, "--dim", min=2, help="World dimension (default 2; the ring stays in the "
                                      "first two coordinates, the others are Gaussian detail)."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="beta: the calibrated mode over β × reward; dim: the "
                                        "paper-weight RTDMD over dimension × reward scale, with the β-meter."),
    betas: Optional[str] = typer.Option(None, "--betas", help="β values of --sweep beta (default 0.5,1,2)."),
    dims: Optional[str] = typer.Option(None, "--dims", help="Dimensions of --sweep dim (default 2,8,32,128)."),
    scales: Optional[str] = typer.Option(None, "--scales", help="Reward scales of --sweep dim (default 1,4)."),
    docs: bool = typer.Option(False, "--docs", help="Regenerate docs/toy.md and the README toy section from "
                              "docs/toy.json, docs/toy_beta.json and docs/toy_dim.json, then exit."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads (tiny MLPs: 1 is fastest)."),
    workers: int = typer.Option(0, "--workers", min=0, help="Worker processes for the (seed, method) cells (0 = one "
                                "per CPU core, 1 with --quick; results do not depend on it)."),
) -> None:
    """Train every method on a Gaussian-mixture world whose teacher, reward-tilted target and metrics are exact."""
    import dataclasses
    import time

    from rich.console import Console

    console = Console()
    if docs:
        from rtdmd_bench.toy import report

        try:
            written = report.write_docs(Path("docs"), Path("README.md"))
        except report.DocsInputError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        for path in written:
            console.print(f"wrote {path}")
        return
    import torch

    from rtdmd_bench.toy import bench

    torch.set_num_threads(threads)
    cfg = bench.quick_config() if quick else bench.BenchConfig()
    over = {k: v for k, v in {"beta": beta, "teacher": teacher}.items() if v is not None}
    if reward is not None:
        if reward not in bench.REWARDS:
            raise typer.BadParameter(f"unknown reward {reward!r}; expected one of {list(bench.REWARDS)}",
                                     param_hint="--reward")
        over.update(bench.REWARDS[reward])
    if teacher not in (None, *bench.TEACHERS):
        raise typer.BadParameter(f"unknown teacher {teacher!r}; expected one of {list(bench.TEACHERS)}",
                                 param_hint="--teacher")
    if dim is not None:
        over["world"] = dataclasses.replace(cfg.world, dim=dim)
    cfg = dataclasses.replace(cfg, **over)
    if sweep is not None:
        _run_sweep(sweep, cfg, seeds, _floats(betas, "--betas"), _floats(dims, "--dims"), _floats(scales, "--scales"),
                   json_out, plot, console)
        return
    names = [m.strip() for m in methods.split(",")] if methods else list(bench.METHODS)
    unknown = [m for m in names if m not in bench.METHODS]
    if unknown:
        raise typer.BadParameter(f"unknown methods {unknown}; expected some of {list(bench.METHODS)}",
                                 param_hint="--methods")

    t0 = time.perf_counter()
    import os

    n_workers = workers or (1 if quick else os.cpu_count() or 1)  # --quick cells take less than a process start
    doc, samples, timing = bench.run(cfg, names, seeds, log=lambda s: console.log(s), workers=n_workers)
    wall = time.perf_counter() - t0
    doc["seeds"], doc["workers"] = seeds, n_workers
    doc["seconds"] = {"wall": wall, **{k: v["mean"] for k, v in timing.items()}}
    for table in _tables(doc, timing, console.width):
        console.print(table)
    console.print(f"{len(names)} methods x {seeds} seeds in {wall:.0f} s "
                  f"(shared per seed: pretrain {timing['_pretrain']['mean']:.1f} s"
                  + (f", stage 1 {timing['_stage1']['mean']:.1f} s" if "_stage1" in timing else "") + ")")
    _write_outputs(doc, json_out, plot, lambda path: bench.plot(bench.World(cfg), samples, path, doc), console)


def _run_sweep(sweep: str, cfg, seeds: int, betas, dims, scales, json_out: Optional[Path], plot: Optional[Path],
               console) -> None:
    """``--sweep beta|dim``: run it, print its summary, write its JSON and figure."""

    from rtdmd_bench.toy import sweeps

    if sweep not in SWEEPS:
        raise typer.BadParameter(f"unknown sweep {sweep!r}; expected one of {list(SWEEPS)}", param_hint="--sweep")
    log = lambda s: console.log(s)  # noqa: E731
    if sweep == "beta":
        doc = sweeps.beta_sweep(cfg, tuple(betas or sweeps.BETAS), seeds=seeds, log=log)
    else:
        doc = sweeps.dim_sweep(cfg, tuple(int(d) for d in (dims or sweeps.DIMS)), tuple(scales or sweeps.SCALES),
                               seeds=seeds, log=log)
    console.print(sweeps.summary(doc))
    _write_outputs(doc, json_out, plot, lambda path: (sweeps.plot_beta if sweep == "beta" else sweeps.plot_dim)(
        doc, path), console)


def _write_outputs(doc: dict, json_out: Optional[Path], plot: Optional[Path], draw, console) -> None:
    """The results JSON (atomically: a crash never leaves half a file) and the figure ``draw(path)`` writes."""
    import json

    from rtdmd_bench.io import atomic_write_text

    if json_out is not None:
        atomic_write_text(json_out, json.dumps(doc, indent=2, default=list) + "\n")
        console.print(f"wrote {json_out}")
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        draw(str(plot))
        console.print(f"wrote {plot}")


def _tables(doc: dict, timing: dict, width: int) -> list:
    """One row per method, mean ± std per metric and seconds, split into tables that fit ``width`` (method names
    never truncate); the title carries the noise floors and the exact E_p~[r]."""
    from rtdmd_bench.cli.tables import fitted_tables
    from rtdmd_bench.toy import bench

    floor = doc["noise_floor"]
    world = bench.World(bench.config_from_dict(doc["config"]))
    title = (f"toy benchmark (beta={doc['config']['beta']}; floors: MMD(p)={floor['mmd_teacher']:.4f}, "
             f"MMD(p~)={floor['mmd_tilted']:.4f}; exact E_p~[r]={world.reward.expected(world.tilted):.3f})")
    rows = [[name, *(f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in bench.METRICS),
             f"{timing.get(name, {}).get('mean', 0.0):.1f}"] for name, m in doc["methods"].items()]
    return fitted_tables(title, "method", [*bench.METRICS, "s"], rows, width, right=True)
