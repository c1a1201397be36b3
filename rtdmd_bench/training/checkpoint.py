"""Atomic checkpoints that make resume continue the same trajectory, read as untrusted input.

``checkpoints/checkpoint-{step}/state.pt`` holds the trainable weights (LoRA, unsharded), EMA shadows,
optimizer and scheduler states, every rank's RNG states, the recipe's step/sampler state and the config hash;
``checkpoints/latest`` names the newest complete one. A directory is written under a temporary name and renamed,
so a crash never leaves a half checkpoint under a final name.

Run folders are shared and downloaded, so a checkpoint is never unpickled beyond tensors and plain data
(``torch.load(weights_only=True)``: the RNG states are stored as lists and tensors for that), it is only read from
inside the run's ``checkpoints/`` folder (``latest`` and every candidate are resolved and checked), a truncated
checkpoint is skipped with a warning in favour of the newest readable one, and anything else is a
``CheckpointError`` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import random
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rtdmd_bench.io import atomic_write_bytes, atomic_write_text, path_inside

SCHEMA = 1
# Run-control keys that may change between a run and its resume without changing the trajectory.
RESUME_FREE_KEYS = ("train.steps", "train.save_every", "train.log_every", "train.console_every", "eval")


class CheckpointError(RuntimeError):
    """Missing, corrupt, tampered or incompatible checkpoint."""


class TruncatedCheckpointError(CheckpointError):
    """A checkpoint file that cannot be read at all (a crash or a full disk while copying it)."""


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
    """Python, numpy, torch CPU and CUDA RNG states of this process, as tensors and plain data only (so a
    checkpoint loads with ``weights_only=True``)."""
    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                      int(has_gauss), float(gauss)],
             "torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    import numpy as np

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_NAME = re.compile(r"^checkpoint-(\d+)$")


def _ckpt_dir(root: str | Path) -> Path:
    return Path(root) / "checkpoints"


def clean_stale(root: str | Path) -> list[Path]:
    """Remove temporary ``.checkpoint-*.tmp`` folders a crash left behind; returns what was removed."""
    ckpts = _ckpt_dir(root)
    stale = sorted(ckpts.glob(".checkpoint-*.tmp")) if ckpts.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def save(root: str | Path, step: int, state: dict[str, Any], keep_last: int = 0) -> Path:
    """Write ``root/checkpoints/checkpoint-{step}`` atomically (call on the main rank only) and point
    ``latest`` at it. ``keep_last`` > 0 deletes older checkpoints beyond that many."""
    ckpts = _ckpt_dir(root)
    final = ckpts / f"checkpoint-{step}"
    tmp = ckpts / f".checkpoint-{step}.{os.getpid()}.tmp"
    clean_stale(root)
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


def _inside(path: Path, folder: Path) -> bool:
    return path_inside(folder, path) is not None


def candidates(root: str | Path) -> list[Path]:
    """Checkpoint folders of the run, newest first: ``latest`` first when it names one, then every
    ``checkpoint-N`` by decreasing N. Only folders that resolve inside ``root/checkpoints`` are returned.

    Raises:
        CheckpointError: ``latest`` names something that is not a checkpoint of this run (tampering).
    """
    ckpts = _ckpt_dir(root)
    if not ckpts.is_dir():
        return []
    found = sorted((p for p in ckpts.iterdir() if _NAME.match(p.name) and p.is_dir() and _inside(p, ckpts)),
                   key=lambda p: int(_NAME.match(p.name).group(1)), reverse=True)
    pointer = ckpts / "latest"
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8", errors="replace").strip()
        target = ckpts / name
        if not _NAME.match(name) or not _inside(target, ckpts):
            raise CheckpointError(
                f"{pointer} names {name!r}, which is not a checkpoint folder inside {ckpts}: refusing it (a run "
                f"folder is untrusted input). Delete {pointer} to resume from the newest checkpoint inside the run.")
        if target in found:
            found.remove(target)
            found.insert(0, target)
        else:
            warnings.warn(f"{pointer} names {name}, which does not exist; resuming from the newest checkpoint "
                          f"found instead", stacklevel=2)
    return found


def latest(root: str | Path) -> Path | None:
    """The newest checkpoint folder with a ``state.pt`` (``latest`` preferred), or None."""
    return next((p for p in candidates(root) if (p / "state.pt").is_file()), None)


def load(path: str | Path, expected_hash: str | None = None) -> dict[str, Any]:
    """Read a checkpoint (tensors and plain data only); raises ``CheckpointError`` on a schema or config-hash
    mismatch, on any object a weights-only load refuses, and on an unreadable (e.g. truncated) file."""
    path = Path(path)
    file = path / "state.pt" if path.is_dir() else path
    if not file.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{file} holds objects other than tensors and plain data; refusing to unpickle it (checkpoints are "
            f"loaded weights-only because run folders are untrusted); it was not written by this program "
            f"(checkpoint schema {SCHEMA}).") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise TruncatedCheckpointError(f"{file} is unreadable (truncated or corrupt): {exc}") from exc
    if not isinstance(state, dict) or state.get("schema") != SCHEMA:
        found = state.get("schema") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{file}: checkpoint schema {found} != {SCHEMA}")
    if expected_hash is not None and state.get("config_hash") != expected_hash:
        raise CheckpointError(
            f"{file}: written with a different config (hash {state.get('config_hash')} != {expected_hash}). "
            f"Only {', '.join(RESUME_FREE_KEYS)} may change on --resume; use a new --out for a new config.")
    return state


def load_latest(root: str | Path, expected_hash: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The newest readable checkpoint of the run and its payload; truncated ones are skipped with a warning.

    Raises:
        CheckpointError: no checkpoint at all, none readable, or a tampered / incompatible one.
    """
    tried = []
    for path in candidates(root):
        if not (path / "state.pt").is_file():
            continue
        try:
            return path, load(path, expected_hash)
        except TruncatedCheckpointError as exc:
            warnings.warn(f"skipping {path}: {exc}", stacklevel=2)
            tried.append(path.name)
    where = _ckpt_dir(root)
    raise CheckpointError(f"--resume: no readable checkpoint under {where}"
                          + (f" (unreadable: {', '.join(tried)})" if tried else ""))
