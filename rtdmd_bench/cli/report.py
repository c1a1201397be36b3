"""``rtdmd-bench leaderboard | compare | check | report``: the reporting commands.

Exit codes: 0 success; 1 a stale leaderboard (``--check``) or a regression (``check``); 2 unusable input
(corrupt files, schema mismatch, refused comparison). Heavy imports (numpy, matplotlib) stay inside the
command bodies so ``rtdmd-bench --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

EXIT_FAIL = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    from rtdmd_bench.cli.common import fail

    return fail(message, code)


def _run_folders(paths: list[Path]) -> list[Path]:
    """The evaluation runs among ``paths`` (so ``leaderboard runs/*`` works): a folder without results.json (a
    failed or unfinished eval, a training run, anything else) is skipped with a note; a named file must exist."""
    keep = []
    for p in paths:
        if p.is_dir() and not (p / "results.json").is_file():
            what = "a training run" if (p / "checkpoints").is_dir() or (p / "metrics.jsonl").is_file() else \
                "not a finished evaluation run"
            typer.echo(f"note: skipped {p}: {what} (no results.json)", err=True)
            continue
        keep.append(p)
    return keep


def _warn_missing_images(run) -> None:
    if run.missing_images:
        shown = ", ".join(run.missing_images[:5]) + (" ..." if len(run.missing_images) > 5 else "")
        typer.echo(f"warning: run {run.label}: {len(run.missing_images)} image(s) missing: {shown}", err=True)


def leaderboard(
    runs: Annotated[Optional[list[Path]], typer.Argument(help="run directories or results.json files")] = None,
    out: Annotated[Path, typer.Option("--out", help="markdown file to write (or to verify with --check)")] = Path(
        "leaderboards/README.md"),
    check: Annotated[bool, typer.Option("--check", help="exit 1 if OUT differs from the regenerated file")] = False,
    published: Annotated[Optional[Path], typer.Option(
        "--published", help="published numbers (default: leaderboards/published.yaml of this checkout)")] = None,
    no_published: Annotated[bool, typer.Option("--no-published", help="leave out the published anchors")] = False,
) -> None:
    """Build the leaderboard markdown from runs plus published anchors (deterministic output)."""
    from rtdmd_bench.io import atomic_write_text
    from rtdmd_bench.published import DEFAULT_PATH, PublishedError
    from rtdmd_bench.report.leaderboard import LeaderboardError, build_leaderboard, stale_diff
    from rtdmd_bench.report.runs import RunError

    runs = _run_folders(runs or [])
    try:
        text = build_leaderboard(runs, None if no_published else (published or DEFAULT_PATH))
    except (RunError, LeaderboardError, PublishedError) as exc:
        raise _fail(str(exc)) from None
    if not check:
        atomic_write_text(out, text)
        typer.echo(f"wrote {out}")
        return
    committed = out.read_text(encoding="utf-8") if out.is_file() else ""
    diff = stale_diff(committed, text, str(out))
    if diff:
        typer.echo(f"{out} is stale; regenerate it with: rtdmd-bench leaderboard "
                   f"{' '.join(str(r) for r in runs or [])} --out {out}\n{diff}", err=True)
        raise typer.Exit(EXIT_FAIL)
    typer.echo(f"{out} is up to date")


def compare(
    run_a: Annotated[Path, typer.Argument(help="reference run (A)")],
    run_b: Annotated[Path, typer.Argument(help="new run (B); its model.training_rewards drive the hacking flag")],
    top: Annotated[int, typer.Option("--top", min=0, help="most improved/regressed prompts per reward")] = 5,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch", help="compare even if suites, seeds, resolutions or scorer versions differ")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the comparison as JSON")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="bootstrap resamples")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="bootstrap seed")] = 0,
) -> None:
    """Paired per-prompt comparison of two runs with CIs, p-values, McNemar, tags and top prompts."""
    import json

    from rtdmd_bench.io import atomic_write_text
    from rtdmd_bench.report.compare import CompareError, compare_runs, comparison_to_dict
    from rtdmd_bench.report.compare_render import render_comparison
    from rtdmd_bench.report.runs import RunError, load_run

    try:
        a, b = load_run(run_a), load_run(run_b)
        result = compare_runs(a, b, top=top, allow_mismatch=allow_mismatch, n_resamples=resamples, seed=seed)
    except (RunError, CompareError) as exc:
        raise _fail(str(exc)) from None
    for run in (a, b):
        _warn_missing_images(run)
    typer.echo(render_comparison(result), nl=False)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(comparison_to_dict(result), indent=2, ensure_ascii=False) + "\n")
        typer.echo(f"wrote {json_out}")


def check(
    run: Annotated[Path, typer.Argument(help="run directory (or results.json) to check")],
    baseline: Annotated[Path, typer.Option("--baseline", help="baseline run dir or results.json "
                                           "(samples.jsonl next to it enables the paired test)")],
    tolerance: Annotated[Optional[list[str]], typer.Option(
        "--tolerance", help="REWARD=DELTA or SUITE/REWARD=DELTA: allowed loss (default 0); repeatable")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="bootstrap resamples")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="bootstrap seed")] = 0,
    allow_partial: Annotated[bool, typer.Option(
        "--allow-partial", help="gate on the images both runs hold when the run lacks some baseline images")] = False,
) -> None:
    """Regression gate: exit 0 = no regression, 1 = regression(s) listed, 2 = unusable input (including a run that
    does not hold every baseline image, unless --allow-partial)."""
    from rtdmd_bench.report.gate import GateInputError, load_baseline, parse_tolerances, render_gate, run_gate
    from rtdmd_bench.report.runs import RunError, load_run

    try:
        tolerances = parse_tolerances(tolerance or [])
        base = load_baseline(baseline)
        new = load_run(run, samples=bool(base.samples), check_images=False)
        report = run_gate(base, new, tolerances, n_resamples=resamples, seed=seed, allow_partial=allow_partial)
    except (RunError, GateInputError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(render_gate(report), nl=False)
    if report.failures:
        raise typer.Exit(EXIT_FAIL)


def report(
    run: Annotated[Path, typer.Argument(help="run directory")],
    compare_run: Annotated[Optional[Path], typer.Option("--compare", help="second run (B) shown side by side")] = None,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("report.html"),
    top: Annotated[int, typer.Option("--top", min=1, help="most changed prompts shown in compare mode")] = 8,
    images: Annotated[str, typer.Option("--images", help="embed (thumbnails inside the file) or link "
                                        "(relative links to the run's PNGs)")] = "embed",
    thumb: Annotated[int, typer.Option("--thumb", min=16, max=1024, help="thumbnail size in px")] = 192,
    allow_mismatch: Annotated[bool, typer.Option("--allow-mismatch", help="see compare")] = False,
) -> None:
    """Self-contained static HTML report: summary, plots, sortable image grid, optional A/B view."""
    from rtdmd_bench.report.compare import CompareError
    from rtdmd_bench.report.html_report import write_report
    from rtdmd_bench.report.runs import RunError, load_run

    if images not in ("embed", "link"):
        raise _fail(f"--images must be 'embed' or 'link', got {images!r}")
    try:
        run_a = load_run(run)
        run_b = load_run(compare_run) if compare_run is not None else None
        write_report(run_a, out, compare=run_b, top=top, images=images, thumb=thumb, allow_mismatch=allow_mismatch)
    except (RunError, CompareError) as exc:
        raise _fail(str(exc)) from None
    for r in (run_a, run_b):
        if r is not None:
            _warn_missing_images(r)
    typer.echo(f"wrote {out}")
