"""``rtdmd-bench score IMAGES --suite NAME [--rewards ...] --out RUN``: score a folder of images made by another
pipeline with the same scorers, aggregation, CIs and run layout as ``eval`` (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rtdmd_bench.cli.common import console, err_console, is_tty, split_list, user_errors


def score_command(
    images: Path = typer.Argument(..., help="Folder of images: GenEval's <index>/metadata.jsonl + <index>/samples/"
                                  "<n>.png, a harness run dir (images/<suite>/...), or a flat folder (+ --mapping)."),
    suite: str = typer.Option(..., "--suite", "-s", help="The suite the images were generated from."),
    rewards: Optional[list[str]] = typer.Option(None, "--rewards", "-r", help="Rewards (default: the suite's)."),
    out: str = typer.Option(..., "--out", "-o", help="Run directory (resumes if it exists)."),
    layout: str = typer.Option("auto", help="auto | geneval | harness | flat."),
    mapping: Optional[Path] = typer.Option(None, help="CSV/JSONL naming each image's prompt: columns file (or image/"
                                           "path, relative to IMAGES) and prompt (or prompt_id), optional sample_idx."),
    name: Optional[str] = typer.Option(None, help="What made the images (shown as the model on leaderboards)."),
    limit: Optional[int] = typer.Option(None, help="Only the first N prompts of the suite."),
    samples_per_prompt: Optional[int] = typer.Option(None, "--samples-per-prompt", "-k", help="Images per prompt."),
    batch_size: Optional[int] = typer.Option(None, help="Scoring batch size (never changes a score)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda | cuda:N."),
    weights: Optional[str] = typer.Option(None, help="Weights root of the scorers, or 'tiny'."),
    suites_dir: Optional[list[Path]] = typer.Option(None, "--suites-dir", help="Folder of user suites (repeatable)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="key.sub=value override, e.g. "
                                             "reward_options.ocr.model=ppocrv4-en (repeatable)."),
    force: bool = typer.Option(False, help="Reuse an --out dir that holds a different run."),
) -> None:
    """Score existing images: every file is lined up with a suite prompt first (a mismatch is one error, before any
    scorer loads); results.json / samples.jsonl follow eval's schema, so compare, check, report and leaderboard
    accept the run. Re-running resumes; adding --rewards X scores only X."""
    from rtdmd_bench.cli.tables import results_table

    with user_errors():
        from rtdmd_bench.config import apply_overrides, build
        from rtdmd_bench.eval.config import ScoreConfig
        from rtdmd_bench.eval.score_images import score_images

        for d in suites_dir or []:
            from rtdmd_bench.suites import add_suites_dir

            add_suites_dir(d)
        values = {"images": str(images), "suite": suite, "rewards": split_list(rewards), "layout": layout,
                  "mapping": str(mapping) if mapping else None, "name": name, "limit": limit,
                  "samples_per_prompt": samples_per_prompt, "batch_size": batch_size, "device": device,
                  "weights": weights, "out": out}
        data = {k: v for k, v in values.items() if v not in (None, ())}
        cfg = build(ScoreConfig, apply_overrides(data, ScoreConfig, set_ or []))
        try:
            results = score_images(cfg, force=force, progress=is_tty())
        except KeyboardInterrupt:
            err_console.print(f"[yellow]interrupted[/]: every scored image is recorded in {out}; run the same "
                              "command again to resume.")
            raise typer.Exit(130) from None
    console.print(results_table(results))
    run = results["run"]
    console.print(f"{run['images_scored']} images scored, {run['images_total']} in the run; results: "
                  f"{Path(out) / 'results.json'}", highlight=False)
