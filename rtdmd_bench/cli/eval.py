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


MODEL_DEFAULTS = "default: the model's own; `rtdmd-bench list models` shows them, `list families` those of a hub id/folder"


def sampling_overrides(steps, guidance, eta, sampler, height, width, sigmas) -> dict:
    """The ``overrides`` section from the first-class sampling flags (None = keep the model's default)."""
    values = {"steps": steps, "guidance": guidance, "eta": eta, "sampler": sampler, "height": height, "width": width}
    if sigmas:
        try:
            values["sigmas"] = tuple(float(x) for x in split_list([sigmas]))
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated numbers, got {sigmas!r}", param_hint="--sigmas") from None
    return {k: v for k, v in values.items() if v is not None}


def eval_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help=(
        "A registry name (`rtdmd-bench list models`), a module:Attr plugin, a local diffusers folder, or a Hugging "
        "Face repo id OWNER/REPO[@revision] (family detected from model_index.json).")),
    suite: Optional[list[str]] = typer.Option(None, "--suite", "-s", help="Suite name(s), comma-separated."),
    suites_dir: Optional[list[Path]] = typer.Option(None, "--suites-dir", help=(
        "Folder of user suites (<name>/suite.yaml next to the prompt file; `rtdmd-bench prompts add`); repeatable. "
        "$RTDMD_BENCH_PROMPTS does the same.")),
    benchmark: Optional[str] = typer.Option(None, help="Preset routing of suites to rewards, e.g. rtdmd-paper."),
    rewards: Optional[list[str]] = typer.Option(None, "--rewards", "-r", help="Rewards for every suite (default: each suite's)."),
    limit: Optional[int] = typer.Option(None, help="First N prompts of each suite."),
    samples_per_prompt: Optional[int] = typer.Option(None, "--samples-per-prompt", "-k", help="Images per prompt."),
    seed: Optional[int] = typer.Option(None, help="Run seed (one input of every image's seed)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size (never changes an image or a score)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda | cuda:N."),
    dtype: Optional[str] = typer.Option(None, help="float32 | bfloat16 | float16 (default: model's on GPU, fp32 on CPU)."),
    weights: Optional[str] = typer.Option(None, help="Weights root, or 'tiny' for tiny random weights."),
    lora: Optional[list[str]] = typer.Option(None, help=(
        "LoRA merged after the model's own stack, repeatable, in order: PATH[:SCALE] (relative to the current "
        "directory; .pt, diffusers/peft .safetensors or a PEFT folder) or OWNER/REPO:path/in/repo[@rev][:SCALE] "
        "(downloaded once into the weights root's loras/).")),
    steps: Optional[int] = typer.Option(None, help=f"Sampler steps ({MODEL_DEFAULTS})."),
    guidance: Optional[float] = typer.Option(None, help=f"CFG scale, or FLUX.1's distilled guidance; 1 = off ({MODEL_DEFAULTS})."),
    eta: Optional[float] = typer.Option(None, help=f"CPS stochasticity η in [0, 1] ({MODEL_DEFAULTS})."),
    sampler: Optional[str] = typer.Option(None, help=f"cps (few-step CPS) | euler_cfg (the family's Euler schedule) ({MODEL_DEFAULTS})."),
    height: Optional[int] = typer.Option(None, help=f"Image height in pixels ({MODEL_DEFAULTS})."),
    width: Optional[int] = typer.Option(None, help=f"Image width in pixels ({MODEL_DEFAULTS})."),
    sigmas: Optional[str] = typer.Option(None, help="Explicit schedule, comma-separated decreasing levels in (0, 1] "
                                         "(a final 0 optional); sets --steps to its length."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run directory (resumes if it exists)."),
    config: Optional[Path] = typer.Option(None, help="YAML EvalConfig; options and --set override it."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="key.sub=value override (repeatable)."),
    io_threads: Optional[int] = typer.Option(None, "--io-threads", help="PNG encode/write threads behind the generator (default: cores - 1, 2 to 8)."),
    force: bool = typer.Option(False, help="Reuse an --out dir that holds a different run."),
    verify_images: bool = typer.Option(False, "--verify-images", help="Re-hash every cached PNG (default: trust size + mtime recorded in the journal)."),
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
               "lora": split_list(lora), "out": out, "io_threads": io_threads,
               "overrides": sampling_overrides(steps, guidance, eta, sampler, height, width, sigmas) or None}
    if benchmark and not suite:
        options["suites"] = ()
    with user_errors():
        for d in suites_dir or []:
            from rtdmd_bench.suites import add_suites_dir

            add_suites_dir(d)
        cfg = build_config(config, options, set_ or [])
        from rtdmd_bench.models.resolve import check_model_ref

        for note in check_model_ref(cfg.model):
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        if (Path(cfg.out) / "model.json").is_file() and not force:  # resuming: same model content as before?
            from rtdmd_bench.eval.rundir import check_model_identity
            from rtdmd_bench.models.resolve import resolve_model
            from rtdmd_bench.weights import resolve_root

            spec = resolve_model(cfg.model, resolve_root(cfg.weights) if cfg.weights != "tiny" else None).spec
            if spec is not None:
                check_model_identity(Path(cfg.out), spec.name, spec.origin)
        from rtdmd_bench.eval.runner import Interrupted, evaluate

        try:
            results = evaluate(cfg, force=force, progress=progress and is_tty(), verify_images=verify_images)
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
        measured = " (measured when the images were generated)" if run.get("throughput_from") else ""
        console.print(f"{run['images_generated']:.0f} images generated, {run['images_total']} in the run"
                      + (f", {rate:.2f} images/s incl. scoring and writing{measured}" if rate else "")
                      + f"; results: {Path(cfg.out) / 'results.json'}")
