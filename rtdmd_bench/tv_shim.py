"""torchvision compatibility shim for CPU-only torch.

Why: on machines where the only reachable torchvision wheel is a CUDA build, its compiled ``_C`` library
cannot load next to CPU torch, and ``import torchvision`` dies with ``operator torchvision::nms does not
exist``. That breaks ``open_clip``, ``timm`` and every transformers image processor. Defining the two
operator schemas that torchvision's meta registrations look up (``nms``, ``qnms``) lets it import; only
the compiled detection kernels stay unavailable, and this project never calls them.

Where torchvision's compiled ops DO load (CPU torch + CPU torchvision, or CUDA torch + CUDA torchvision)
``install()`` loads them and defines nothing, so the shim is a no-op there.

The setup script copies this file into site-packages as ``_rtdmd_tv_shim.py`` with a ``.pth`` line so it
covers every entry point (pytest, torchrun workers); ``rtdmd_bench/__init__.py`` also calls
``install_lazy()`` as a fallback. This module must not import torch at import time.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

_LIB = None
STATE = {"installed": False, "reason": "not run"}


def install() -> bool:
    """Define ``torchvision::nms``/``qnms`` if torchvision's ``_C`` cannot load.

    Returns:
        True when the schemas were defined by this shim, False when nothing was needed.
    """
    global _LIB
    if _LIB is not None:
        return True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        STATE.update(installed=False, reason="torchvision not installed")
        return False
    import torch

    libs = glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "_C*.so"))
    if libs:
        try:
            torch.ops.load_library(libs[0])
            STATE.update(installed=False, reason="torchvision compiled ops load")
            return False
        except (OSError, ImportError, RuntimeError):
            pass
    try:  # another copy of the shim (or torchvision itself) already defined the schema
        torch.ops.torchvision.nms  # noqa: B018
        STATE.update(installed=False, reason="torchvision::nms already defined")
        return False
    except (AttributeError, RuntimeError):
        pass
    _LIB = torch.library.Library("torchvision", "FRAGMENT")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    STATE.update(installed=True, reason="torchvision compiled ops unavailable; schemas defined")
    return True


class _Hook:
    """Meta-path finder that runs ``install()`` right before torchvision is first imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        install()
        return None  # let the normal finders locate torchvision


def install_lazy() -> None:
    """Arrange for ``install()`` to run on the first ``import torchvision`` (no torch import now)."""
    if "torchvision" in sys.modules:
        if "torch" in sys.modules:
            install()
        return
    if not any(isinstance(f, _Hook) or type(f).__name__ == "_Hook" for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
