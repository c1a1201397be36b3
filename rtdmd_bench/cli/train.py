"""``rtdmd-bench train --stage 1|2 --model NAME [--config FILE] [--set k=v ...] [--weights DIR|tiny] [--steps N]
[--out DIR] [--resume]``; also ``torchrun --nproc_per_node N -m rtdmd_bench train ...``.

Config resolution: ``--config FILE``, else ``trainers/configs/<stage folder>/<model>.yaml`` when it exists, else the
recipe's defaults with ``model.name = NAME``; then ``--set`` overrides and ``--steps``. Every check (config keys,
model/reward names, BP differentiability, K | batch) runs before any model loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def resolve_config(trainer: str, model: Optional[str], config: Optional[Path], set_: list[str],
                   steps: Optional[int]):
    """``(trainer spec, cfg, cfg path)`` strictly loaded; raises ConfigError/RegistryError on bad input."""
    from rtdmd_bench import config as cfglib
    from rtdmd_bench.training.registry import TRAINERS, configs_root

    spec = TRAINERS.spec(trainer)
    overrides = list(set_ or [])
    path = config
    if path is None and model:
        folder = configs_root() / spec.configs
        path = next((c for c in (folder / f"{model}.yaml", folder / f"{model.replace('-', '_')}.yaml")
                     if c.is_file()), None)
        if path is None:
            overrides.insert(0, f"model.name={model}")
    elif model:
        overrides.insert(0, f"model.name={model}")
    if steps is not None:
        overrides.append(f"train.steps={steps}")
    return spec, cfglib.load(TRAINERS.get(trainer).config, path, overrides), path


def default_run_dir(trainer: str, cfg, config_path: Optional[Path]) -> Path:
    """``runs/train/<trainer>-<config file stem>`` (``<model name>`` without a config file): the stage-1 output
    the stage-2 configs' ``lora.*_init_from`` point at (``sd35m.yaml`` -> ``runs/train/stage1_acdmd-sd35m``,
    ``sd35m-fixed.yaml`` -> ``runs/train/stage1_acdmd-sd35m-fixed``)."""
    return Path("runs") / "train" / f"{trainer}-{config_path.stem if config_path else cfg.model.name}"


def train(
    stage: Optional[int] = typer.Option(None, "--stage", help="1 = AC-DMD cold start, 2 = RTDMD."),
    model: Optional[str] = typer.Option(None, "--model", help="Backbone: a config name (sd35m, flux2_4b, tiny_sd35, ...) "
                                        "or a model registry name."),
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML (default: trainers/configs/<stage>/<model>.yaml)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config key: --set train.seed=1 (repeatable)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Weights root, or 'tiny' for tiny random weights."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Train steps (stage 1) / epochs (stage 2)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/train/<trainer>-<config "
                                       "name>, where the stage-2 configs look for stage 1)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in --out."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda (default: cuda when available)."),
    trainer: Optional[str] = typer.Option(None, "--trainer", help="Recipe by name instead of --stage: "
                                          "stage1_acdmd | stage2_rtdmd | dmd | grpo."),
    allow_test_prompts: bool = typer.Option(False, "--allow-test-prompts", help="Train on a suite whose split is "
                                            "'test' (benchmark prompts); recorded in training.json, and evaluations "
                                            "on these prompts are flagged 'trained on these prompts'."),
) -> None:
    """Train a few-step generator with a registered recipe; writes config.json, metrics.jsonl, checkpoints and
    lora/generator_ema.pt (loadable by `rtdmd-bench eval --lora`) under --out."""
    from rtdmd_bench.cli.common import err_console, user_errors

    with user_errors():
        from rtdmd_bench import config as cfglib
        from rtdmd_bench import parallel
        from rtdmd_bench.training.registry import STAGES, TRAINERS

        if trainer is None:
            if stage not in STAGES:
                raise ValueError(f"--stage must be 1 or 2 (or pass --trainer NAME), got {stage}")
            trainer = STAGES[stage]
        sets = list(set_ or []) + (["data.allow_test_prompts=true"] if allow_test_prompts else [])
        spec, cfg, path = resolve_config(trainer, model, config, sets, steps)
        recipe = TRAINERS.get(spec.name)
        recipe.validate(cfg, parallel.world_size())
        expected = getattr(cfg, "expected_world", None)
        if expected and expected != parallel.world_size() and parallel.rank_world()[0] == 0:
            err_console.print(f"note: this config is written for {expected} processes (expected_world); this launch "
                              f"has {parallel.world_size()}, so each step sees {parallel.world_size()}/{expected} of "
                              f"the reference's global batch", highlight=False, markup=False)
        run_dir = out or default_run_dir(spec.name, cfg, path)
        from rtdmd_bench.training import checkpoint

        try:
            recipe(cfg, cfglib.to_dict(cfg), weights=weights, out=str(run_dir), resume=resume, device=device)
        except checkpoint.CheckpointError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        finally:
            parallel.shutdown()
