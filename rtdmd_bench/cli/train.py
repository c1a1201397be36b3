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
        candidate = configs_root() / spec.configs / f"{model.replace('-', '_')}.yaml"
        path = candidate if candidate.is_file() else None
        if path is None:
            overrides.insert(0, f"model.name={model}")
    elif model:
        overrides.insert(0, f"model.name={model}")
    if steps is not None:
        overrides.append(f"train.steps={steps}")
    return spec, cfglib.load(TRAINERS.get(trainer).config, path, overrides), path


def train(
    stage: Optional[int] = typer.Option(None, "--stage", help="1 = AC-DMD cold start, 2 = RTDMD."),
    model: Optional[str] = typer.Option(None, "--model", help="Backbone: a config name (sd35m, flux2_4b, tiny_sd35, ...) "
                                        "or a model registry name."),
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML (default: trainers/configs/<stage>/<model>.yaml)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config key: --set train.seed=1 (repeatable)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Weights root, or 'tiny' for tiny random weights."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Train steps (stage 1) / epochs (stage 2)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/train/<trainer>-<model>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in --out."),
    force: bool = typer.Option(False, "--force", help="Start over in an --out that holds a run (deletes its "
                               "checkpoints, metrics and LoRA)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda (default: cuda when available)."),
    trainer: Optional[str] = typer.Option(None, "--trainer", help="Recipe by name instead of --stage: "
                                          "stage1_acdmd | stage2_rtdmd | dmd | grpo."),
) -> None:
    """Train a few-step generator with a registered recipe; writes config.json, metrics.jsonl, checkpoints and
    lora/generator_ema.pt (loadable by `rtdmd-bench eval --lora`) under --out."""
    from rtdmd_bench.cli.common import console, user_errors
    from rtdmd_bench.cli.errors import is_main_rank

    with user_errors():
        from rtdmd_bench import config as cfglib
        from rtdmd_bench import parallel
        from rtdmd_bench.hf import quiet_hf
        from rtdmd_bench.training.registry import STAGES, TRAINERS

        if trainer is None:
            if stage not in STAGES:
                raise ValueError(f"--stage must be 1 or 2 (or pass --trainer NAME), got {stage}")
            trainer = STAGES[stage]
        spec, cfg, _ = resolve_config(trainer, model, config, set_ or [], steps)
        recipe = TRAINERS.get(spec.name)
        recipe.validate(cfg, parallel.world_size())
        parallel.check_device(device)
        run_dir = out or Path("runs") / "train" / f"{spec.name}-{cfg.model.name}"
        quiet_hf()
        try:
            recipe(cfg, cfglib.to_dict(cfg), weights=weights, out=str(run_dir), resume=resume, device=device,
                   force=force)
        finally:
            parallel.shutdown()
    lora = run_dir / "lora" / "generator_ema.pt"
    if is_main_rank():
        console.print(f"trained {cfg.train.steps} steps; run folder {run_dir}"
                      + (f"; LoRA for `rtdmd-bench eval --lora`: {lora}" if lora.is_file() else ""), highlight=False)
