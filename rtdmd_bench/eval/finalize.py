"""Rank 0's last step: merge this session's journals into samples.jsonl, aggregate, write results.json.

The records read at the start (``existing``) are extended with the journal lines written since, so a resume
reads samples.jsonl once. model.json is recomputed when missing (the generator is built for that, nothing
else); a session that generated nothing keeps the throughput figures of the session that did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtdmd_bench.eval.config import EvalConfig
from rtdmd_bench.eval.plan import Plan

THROUGHPUT_KEYS = ("images_per_s", "images_per_s_includes", "loop_s", "generation_time_s", "scoring_time_s",
                   "profile_s", "model_load_s", "io_threads", "png_compress_level", "png_format", "hardware")


def model_description(out: Path, cfg: EvalConfig, workers: Any) -> dict[str, Any]:
    """model.json, rebuilt from the generator (which ``workers`` builds and describes) when missing or unreadable."""
    path = out / "model.json"
    try:
        info = json.loads(path.read_text())
        if isinstance(info, dict) and info.get("name"):
            return info
    except (OSError, ValueError):
        pass
    workers.generator  # noqa: B018  (building it writes model.json)
    return json.loads(path.read_text())


def _previous_throughput(out: Path) -> dict[str, Any] | None:
    """The throughput figures of the last results.json that measured them (None when there is none)."""
    try:
        old = json.loads((out / "results.json").read_text())
        run = old["run"]
        if run.get("images_per_s") is None:
            return None
        figures = {k: run[k] for k in THROUGHPUT_KEYS if k in run}
        figures["throughput_from"] = run.get("throughput_from") or old.get("created")
        return figures
    except (OSError, ValueError, KeyError, TypeError):
        return None


def finalize(cfg: EvalConfig, plan: Plan, out: Path, existing: dict, world: int, stats_total: dict[str, Any],
             wall: float, device: str, workers: Any, tiny: bool) -> dict[str, Any]:
    from rtdmd_bench.eval import rundir
    from rtdmd_bench.eval.journal import journal_paths, merge_records, read_jsonl, write_samples
    from rtdmd_bench.eval.runner import IMAGES_PER_S_INCLUDES, _io_threads
    from rtdmd_bench.eval.scoring import reward_entries
    from rtdmd_bench.imaging import PNG_COMPRESS_LEVEL, PNG_FORMAT
    from rtdmd_bench.io import atomic_write_json

    journals = journal_paths(out)
    merged = merge_records((rec for p in journals for rec in read_jsonl(p)), into=existing)
    if journals or not (out / "samples.jsonl").is_file():  # unchanged records: samples.jsonl already holds them
        write_samples(out, merged)
    entries, info = reward_entries(plan, merged, cfg.weights, cfg.reward_options, cfg.bootstrap_resamples)
    model_info = model_description(out, cfg, workers)
    n_gen = int(stats_total.get("images_generated", 0))
    loop = stats_total.get("max_loop_s") or 0.0
    run = {"world_size": world, "hardware": rundir.hardware(device), "wall_time_s": wall,
           **stats_total, "images_total": len(plan.items),
           "images_per_s": n_gen / loop if n_gen and loop else None,
           "images_per_s_includes": IMAGES_PER_S_INCLUDES, "io_threads": _io_threads(cfg),
           "png_compress_level": PNG_COMPRESS_LEVEL, "png_format": PNG_FORMAT, "seed": cfg.seed,
           "bootstrap_resamples": cfg.bootstrap_resamples, "throughput_from": None}
    if n_gen == 0:
        previous = _previous_throughput(out)
        if previous is not None:
            run.update(previous)  # a resume that generated nothing keeps the generating session's figures
    results = rundir.assemble(cfg, plan, model_info, entries, run, tiny or bool(model_info.get("tiny")), info)
    atomic_write_json(out / "results.json", results)
    return results
