"""Atomic checkpoints that make resume continue the same trajectory.

``checkpoints/checkpoint-{step}/state.pt`` holds the trainable weights (LoRA, unsharded), EMA shadows,
optimizer and scheduler states, every rank's RNG states, the recipe's step/sampler state and the config hash;
``checkpoints/latest`` names the newest complete one. A directory is written under a temporary name and renamed,
so a crash never leaves a half checkpoint under a final name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rtdmd_bench.io import atomic_write_bytes, atomic_write_text

SCHEMA = 1
# Run-control keys that may change between a run and its resume without changing the trajectory.
RESUME_FREE_KEYS = ("train.steps", "train.save_every", "train.log_every", "train.console_every", "eval")


class CheckpointError(RuntimeError):
    """Missing, corrupt or incompatible checkpoint."""


def config_hash(cfg: Mapping[str, Any], exclude: tuple[str, ...] = RESUME_FREE_KEYS) -> str:
    """sha256 (16 hex) of the resolved config without the run-control keys."""
    data = json.loads(json.dumps(cfg, default=str))
    for dotted in exclude:
        node, parts = data, dotted.split(".")
        for p in parts[:-1]:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def capture_rng() -> dict[str, Any]:
    """Python, numpy, torch CPU and CUDA RNG states of this process."""
    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(root: str | Path, step: int, state: dict[str, Any], keep_last: int = 0) -> Path:
    """Write ``root/checkpoints/checkpoint-{step}`` atomically (call on the main rank only) and point
    ``latest`` at it. ``keep_last`` > 0 deletes older checkpoints beyond that many."""
    ckpts = Path(root) / "checkpoints"
    final = ckpts / f"checkpoint-{step}"
    tmp = ckpts / f".checkpoint-{step}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    buf = io.BytesIO()
    torch.save({"schema": SCHEMA, "step": step, **state}, buf)
    atomic_write_bytes(tmp / "state.pt", buf.getvalue())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(ckpts / "latest", final.name + "\n")
    if keep_last > 0:
        older = sorted((p for p in ckpts.glob("checkpoint-*") if p != final), key=lambda p: int(p.name.split("-")[1]))
        for p in older[:-keep_last] if keep_last > 1 else older:
            shutil.rmtree(p, ignore_errors=True)
    return final


def latest(root: str | Path) -> Path | None:
    """The newest complete checkpoint under ``root`` (or None)."""
    pointer = Path(root) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if (path / "state.pt").is_file() else None


def load(path: str | Path, expected_hash: str | None = None) -> dict[str, Any]:
    """Read a checkpoint; raises ``CheckpointError`` on a schema or config-hash mismatch."""
    path = Path(path)
    file = path / "state.pt" if path.is_dir() else path
    if not file.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    state = torch.load(file, map_location="cpu", weights_only=False)  # our own file: RNG states are pickled
    if state.get("schema") != SCHEMA:
        raise CheckpointError(f"{file}: checkpoint schema {state.get('schema')} != {SCHEMA}")
    if expected_hash is not None and state.get("config_hash") != expected_hash:
        raise CheckpointError(
            f"{file}: written with a different config (hash {state.get('config_hash')} != {expected_hash}). "
            f"Only {', '.join(RESUME_FREE_KEYS)} may change on --resume; use a new --out for a new config.")
    return state
