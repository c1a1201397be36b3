"""``rtdmd-bench toy [--methods a,b] [--seeds 3] [--json out.json] [--plot out.png] [--quick]``: the analytic 2-D
benchmark of the trainers (rtdmd_bench.toy). Prints mean ± std over seeds next to the exact noise floors."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def toy(
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated subset (default: all). "
                                          "teacher, ac_dmd, dmd, rtdmd, grpo, bp, rtdmd_no_subgrpo, rtdmd_no_bp, "
                                          "rtdmd_no_consistency, rtdmd_exact_kl."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Independent seeds (pretraining, training and evaluation)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the samples-over-contours figure (PNG) here."),
    quick: bool = typer.Option(False, "--quick", help="Tiny schedules (seconds; for tests, numbers not converged)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="β of the tilted target p~ ∝ p·exp(β r) (default 1)."),
    reward: Optional[str] = typer.Option(None, "--reward", help="bump (default) | linear (direction (0, 1))."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="exact (default) | mlp (imperfect pretrained MLP)."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch CPU threads (tiny MLPs: 1 is fastest)."),
) -> None:
    """Train every method on a 2-D Gaussian-mixture world whose teacher, reward-tilted target and metrics are exact."""
    import dataclasses
    import json
    import time

    import torch
    from rich.console import Console

    from rtdmd_bench.toy import bench

    console = Console()
    torch.set_num_threads(threads)
    cfg = bench.quick_config() if quick else bench.BenchConfig()
    over = {k: v for k, v in {"beta": beta, "teacher": teacher}.items() if v is not None}
    if reward == "linear":
        over.update(reward="linear", reward_params={"direction": (0.0, 1.0)})
    elif reward not in (None, "bump"):
        raise typer.BadParameter(f"unknown reward {reward!r}; expected bump or linear", param_hint="--reward")
    if teacher not in (None, *bench.TEACHERS):
        raise typer.BadParameter(f"unknown teacher {teacher!r}; expected one of {list(bench.TEACHERS)}",
                                 param_hint="--teacher")
    cfg = dataclasses.replace(cfg, **over)
    names = [m.strip() for m in methods.split(",")] if methods else list(bench.METHODS)
    unknown = [m for m in names if m not in bench.METHODS]
    if unknown:
        raise typer.BadParameter(f"unknown methods {unknown}; expected some of {list(bench.METHODS)}",
                                 param_hint="--methods")
    t0 = time.perf_counter()
    doc, samples, timing = bench.run(cfg, names, seeds, log=lambda s: console.log(s))
    wall = time.perf_counter() - t0
    for table in _tables(doc, timing, console.width):
        console.print(table)
    console.print(f"{len(names)} methods x {seeds} seeds in {wall:.0f} s "
                  f"(shared per seed: pretrain {timing['_pretrain']['mean']:.1f} s"
                  + (f", stage 1 {timing['_stage1']['mean']:.1f} s" if "_stage1" in timing else "") + ")")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=2, default=list) + "\n")
        console.print(f"wrote {json_out}")
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        bench.plot(bench.World(cfg), samples, str(plot), doc)
        console.print(f"wrote {plot}")


def _tables(doc: dict, timing: dict, width: int) -> list:
    """One row per method, mean ± std per metric and seconds, split into tables that fit ``width`` (method names
    never truncate); the title carries the noise floors and the exact E_p~[r]."""
    from rtdmd_bench.cli.tables import fitted_tables
    from rtdmd_bench.toy import bench

    floor = doc["noise_floor"]
    world = bench.World(bench.BenchConfig(**_config_from_dict(doc["config"])))
    title = (f"toy benchmark (beta={doc['config']['beta']}; floors: MMD(p)={floor['mmd_teacher']:.4f}, "
             f"MMD(p~)={floor['mmd_tilted']:.4f}; exact E_p~[r]={world.reward.expected(world.tilted):.3f})")
    rows = [[name, *(f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in bench.METRICS),
             f"{timing.get(name, {}).get('mean', 0.0):.1f}"] for name, m in doc["methods"].items()]
    return fitted_tables(title, "method", [*bench.METRICS, "s"], rows, width, right=True)


def _config_from_dict(d: dict) -> dict:
    """Rebuild the nested values of ``BenchConfig`` from ``config_dict`` output (stage1/stage2 stay dicts)."""
    from rtdmd_bench.toy.world import WorldConfig

    d = dict(d)
    d["world"] = WorldConfig(**d["world"])
    d["sigmas"] = tuple(d["sigmas"])
    d["exact_t"] = tuple(d["exact_t"])
    return d
