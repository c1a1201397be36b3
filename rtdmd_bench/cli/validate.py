"""``rtdmd-bench validate CONFIG...``: strict-load configs and resolve every registry name, loading no weights."""

from __future__ import annotations

from pathlib import Path

import typer

from rtdmd_bench.cli.common import console, err_console


def validate_eval(path: Path) -> str:
    from rtdmd_bench.config import load
    from rtdmd_bench.eval.config import EvalConfig
    from rtdmd_bench.eval.plan import check_rewards, routing
    from rtdmd_bench.models.resolve import check_model_ref
    from rtdmd_bench.suites import suite_spec

    cfg = load(EvalConfig, path)
    check_model_ref(cfg.model)
    route = routing(cfg)
    for suite, _ in route:
        suite_spec(suite)
    check_rewards(route)
    return f"eval config: model {cfg.model}, " + ", ".join(f"{s} <- {'+'.join(r)}" for s, r in route)


def is_trainer_config(path: Path) -> bool:
    return "trainers" in path.resolve().parts and "configs" in path.resolve().parts


def validate_command(configs: list[Path] = typer.Argument(..., help="YAML config files (eval or trainer).")) -> None:
    """Strict-load each config (unknown keys, wrong types) and resolve every model/suite/reward name."""
    failed = 0
    for path in configs:
        try:
            if is_trainer_config(path):
                from rtdmd_bench.training.registry import validate_trainer_config

                what = validate_trainer_config(path)
            else:
                what = validate_eval(path)
            console.print(f"[green]✓[/] {path}: {what}", soft_wrap=True)
        except Exception as exc:  # report every file, then fail
            failed += 1
            err_console.print(f"[red]✗[/] {path}: {exc}", highlight=False)
    if failed:
        raise typer.Exit(1)
