"""The weights root: one directory with a fixed sub-layout per model and reward.

``--weights DIR`` (or ``$RTDMD_BENCH_WEIGHTS``) names the root; ``--weights tiny`` names a cache of tiny
random weights of the real architectures, written once in the production layout by
``rtdmd_bench.testing.write_tiny_weights`` so that the production loaders run everywhere.
Nothing here touches the network; ``rtdmd-bench weights fetch NAME`` is the only downloader.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

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
    """Directory of the tiny random weights (built on first use; safe against concurrent builders)."""
    env = os.environ.get("RTDMD_BENCH_TINY_WEIGHTS")
    root = Path(env).expanduser() if env else cache_dir() / f"tiny-weights-{_tiny_fingerprint()}"
    if (root / TINY_MARKER).is_file():
        return root
    from rtdmd_bench.testing import write_tiny_weights

    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_tiny_weights(tmp)
    try:
        os.replace(tmp, root) if not root.exists() else shutil.rmtree(tmp)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    if not (root / TINY_MARKER).is_file():
        raise MissingWeightsError(f"tiny weights at {root} are incomplete; delete the folder and retry")
    return root


def resolve_root(weights: str | os.PathLike | None) -> Path:
    """``None`` -> default root; ``"tiny"`` -> tiny cache (built if needed); else the given directory."""
    if weights is None:
        return default_root()
    if str(weights) == TINY:
        return tiny_root()
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
