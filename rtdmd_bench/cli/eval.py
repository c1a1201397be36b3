"""``rtdmd-bench eval``: generate, score and report one model on one or more suites (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rtdmd_bench.cli.common import console, err_console, is_tty, split_list, user_errors


def build_config(config: Optional[Path], options: dict, set_: list[str]):
    """Defaults < --config file < explicit options < --set overrides (strict at every step)."""
    from rtdmd_bench.config import _merge, apply_overrides, build, read_yaml
    from rtdmd_bench.eval.config import EvalConfig

    data = read_yaml(config) if config else {}
    data = _merge(data, {k: v for k, v in options.items() if v not in (None, ())})
    return build(EvalConfig, apply_overrides(data, EvalConfig, set_ or []))


def eval_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model registry name or module:Attr plugin."),
    suite: Optional[list[str]] = typer.Option(None, "--suite", "-s", help="Suite name(s), comma-separated."),
    benchmark: Optional[str] = typer.Option(None, help="Preset routing of suites to rewards, e.g. rtdmd-paper."),
    rewards: Optional[list[str]] = typer.Option(None, "--rewards", "-r", help="Rewards for every suite (default: each suite's)."),
    limit: Optional[int] = typer.Option(None, help="First N prompts of each suite."),
    samples_per_prompt: Optional[int] = typer.Option(None, "--samples-per-prompt", "-k", help="Images per prompt."),
    seed: Optional[int] = typer.Option(None, help="Run seed (one input of every image's seed)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size (never changes an image or a score)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda | cuda:N."),
    dtype: Optional[str] = typer.Option(None, help="float32 | bfloat16 | float16 (default: model's on GPU, fp32 on CPU)."),
    weights: Optional[str] = typer.Option(None, help="Weights root, or 'tiny' for tiny random weights."),
    lora: Optional[list[str]] = typer.Option(None, help="Extra LoRA file(s) merged after the model's stack."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run directory (resumes if it exists)."),
    config: Optional[Path] = typer.Option(None, help="YAML EvalConfig; options and --set override it."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="key.sub=value override (repeatable)."),
    force: bool = typer.Option(False, help="Reuse an --out dir that holds a different run."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Generate images for every (suite, prompt, sample), score them, print mean ± 95% CI per reward.

    Re-running the same command resumes: verified images are not regenerated and recorded scores are not
    recomputed; adding --rewards X scores cached images only.
    """
    from rtdmd_bench.cli.tables import results_table

    options = {"model": model, "suites": split_list(suite) or None, "benchmark": benchmark,
               "rewards": split_list(rewards), "limit": limit, "samples_per_prompt": samples_per_prompt,
               "seed": seed, "batch_size": batch_size, "device": device, "dtype": dtype, "weights": weights,
               "lora": split_list(lora), "out": out}
    if benchmark and not suite:
        options["suites"] = ()
    with user_errors():
        cfg = build_config(config, options, set_ or [])
        from rtdmd_bench.eval.runner import Interrupted, evaluate

        try:
            results = evaluate(cfg, force=force, progress=progress and is_tty())
        except Interrupted:
            err_console.print(f"[yellow]interrupted[/]: everything finished so far is recorded in {cfg.out}; "
                              "run the same command again to resume.")
            raise typer.Exit(130) from None
    if results is not None:
        console.print(results_table(results))
        for sid, suite in (results.get("suites") or {}).items():
            if suite.get("trained_on_prompts"):  # eval.contamination: the numbers on this suite are not held out
                o = suite["trained_on_prompts"]
                console.print(f"⚠ trained on these prompts: {sid} ({o['n_overlap']} of {o['n_prompts']} evaluated "
                              "prompts are in the model's training prompts)", style="bold yellow", markup=False)
        run = results["run"]
        rate = run.get("images_per_s")
        console.print(f"{run['images_generated']:.0f} images generated, {run['images_total']} in the run"
                      + (f", {rate:.2f} images/s" if rate else "") + f"; results: {Path(cfg.out) / 'results.json'}")
