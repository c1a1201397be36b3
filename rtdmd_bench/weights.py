"""The weights root: one directory with a fixed sub-layout per model and reward.

``--weights DIR`` (or ``$RTDMD_BENCH_WEIGHTS``) names the root; ``--weights tiny`` names a cache of tiny
random weights of the real architectures, written in the production layout so that the production loaders run
everywhere. The cache is built in *parts* on first use: the layer that needs a part passes its writer
(``models.build`` the generators', ``rewards.build`` the scorers'), so this base module imports neither.
Nothing here touches the network; ``rtdmd-bench weights fetch NAME`` is the only downloader.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TINY = "tiny"
TINY_MARKER = "TINY_RANDOM_WEIGHTS"  # file at the root of every tiny-weights tree


class MissingWeightsError(FileNotFoundError):
    """Weight files are missing; the message lists them, the expected layout and the fetch command."""


def default_root() -> Path:
    env = os.environ.get("RTDMD_BENCH_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rtdmd-bench" / "weights"


def cache_dir() -> Path:
    env = os.environ.get("RTDMD_BENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rtdmd-bench"


TinyPart = tuple[str, Callable[[Path], Any]]  # (part name, writer(root) that writes the part's files into root)


def _tiny_fingerprint() -> str:
    """Hash of the code that writes tiny weights, so a change rebuilds the cache."""
    pkg = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted(list(pkg.rglob("tiny*.py")) + [pkg / "testing.py"]):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def tiny_root() -> Path:
    """Directory of the tiny random weights (``$RTDMD_BENCH_TINY_WEIGHTS`` or a cache keyed by the writers' code);
    parts are built into it by ``ensure_tiny_part``."""
    env = os.environ.get("RTDMD_BENCH_TINY_WEIGHTS")
    return Path(env).expanduser() if env else cache_dir() / f"tiny-weights-{_tiny_fingerprint()}"


def _part_marker(root: Path, name: str) -> Path:
    return root / f".tiny-{name}.done"


@contextmanager
def _locked(root: Path):
    """An exclusive OS lock on ``root/.lock`` (concurrent builders wait instead of racing)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_tiny_part(root: Path, part: TinyPart) -> Path:
    """Build ``part`` of the tiny weights under ``root`` unless its marker says it is there; returns ``root``.

    The writer writes into a private temporary folder whose top-level entries are then moved into ``root`` and the
    part's marker is written last, so a crash never leaves a part that looks complete.
    """
    name, writer = part
    if _part_marker(root, name).is_file():
        return root
    with _locked(root):
        if _part_marker(root, name).is_file():  # another process built it while we waited
            return root
        tmp = root / f".{name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        writer(tmp)
        for entry in sorted(tmp.iterdir()):
            dest = root / entry.name
            if dest.is_dir() and entry.is_dir():  # a shared folder (e.g. models/): merge one level down
                for sub in entry.iterdir():
                    shutil.rmtree(dest / sub.name, ignore_errors=True)
                    os.replace(sub, dest / sub.name)
            else:
                shutil.rmtree(dest, ignore_errors=True) if dest.is_dir() else dest.unlink(missing_ok=True)
                os.replace(entry, dest)
        shutil.rmtree(tmp, ignore_errors=True)
        (root / TINY_MARKER).write_text("tiny random weights: results computed on them are not real model numbers\n")
        _part_marker(root, name).write_text(_tiny_fingerprint() + "\n")
    return root


def resolve_root(weights: str | os.PathLike | None, tiny_part: TinyPart | None = None) -> Path:
    """``None`` -> default root; ``"tiny"`` -> the tiny cache (with ``tiny_part`` built if given); else the dir."""
    if weights is None:
        return default_root()
    if str(weights) == TINY:
        root = tiny_root()
        return ensure_tiny_part(root, tiny_part) if tiny_part is not None else root
    return Path(weights).expanduser()


def is_tiny(root: Path) -> bool:
    """True when ``root`` holds tiny random weights (results computed on it are marked as such)."""
    return (Path(root) / TINY_MARKER).is_file()


def require_files(root: Path, files: Iterable[str], name: str, layout: str = "") -> list[Path]:
    """Return ``root/f`` for each relative path, or raise MissingWeightsError naming what is missing.

    Args:
        root: weights root.
        files: relative paths that must exist (files or directories).
        name: registry name, used in the fix (``rtdmd-bench weights fetch NAME``).
        layout: optional extra description of the expected layout.
    """
    paths = [Path(root) / f for f in files]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        listing = "\n  ".join(missing)
        expected = "\n  ".join(str(f) for f in files)
        raise MissingWeightsError(
            f"weights for {name!r} are missing under {root}:\n  {listing}\n"
            f"Expected layout under the weights root:\n  {expected}\n{layout}"
            f"Fix: run `rtdmd-bench weights fetch {name} --weights {root}` on a machine with network access, "
            f"or pass --weights DIR pointing at a root that holds them (or --weights tiny for random test weights)."
        )
    return paths
