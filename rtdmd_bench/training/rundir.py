"""A training run folder: one run per ``--out``, never silently overwritten or appended to.

``train --out DIR`` on a folder that already holds a run (config.json, checkpoints, metrics or an exported LoRA)
is refused unless ``--resume`` (continue it) or ``--force`` (start it over: its checkpoints, metrics, TensorBoard
logs and LoRA are deleted first). A resumed run keeps ``metrics.jsonl`` free of repeated steps.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

RUN_FILES = ("config.json", "checkpoints", "metrics.jsonl", "lora", "tb")


class TrainRunDirError(ValueError):
    """``--out`` holds another run; the message says which flag resolves it."""


def prepare(out: str | Path, *, resume: bool, force: bool, is_main: bool) -> None:
    """Check (every rank) and, with ``--force``, clear (main rank) the run folder before anything is written."""
    out = Path(out)
    present = [name for name in RUN_FILES if (out / name).exists()]
    if resume or not present:
        return
    if not force:
        raise TrainRunDirError(
            f"{out} already holds a training run ({', '.join(present)}). Use --resume to continue it, --force to "
            f"start it over (deletes its checkpoints, metrics and exported LoRA), or another --out.")
    if is_main:
        for name in present:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def truncate_metrics(path: str | Path, last_step: int) -> int:
    """Keep the rows of ``metrics.jsonl`` with ``step <= last_step`` (a resume replays the steps after its
    checkpoint); unreadable lines are dropped. Returns the number of rows removed."""
    from rtdmd_bench.io import atomic_write_text

    path = Path(path)
    if not path.is_file():
        return 0
    kept, removed = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            ok = isinstance(row, dict) and int(row.get("step", last_step + 1)) <= last_step
        except (ValueError, TypeError):
            ok = False
        if ok:
            kept.append(line)
        else:
            removed += 1
    if removed:
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return removed
