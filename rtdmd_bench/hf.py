"""Hugging Face library plumbing shared by every layer: silencing diffusers/transformers loading output.

``quiet_hf()`` never imports either library (together they cost seconds; a plugin generator or a cheap reward
uses neither): a library already imported is silenced at once, one imported later right after its logging module
executes (an import hook on ``<lib>.utils.logging``), before any loading bar can appear.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from typing import Any

LOGGING_MODULES = ("diffusers.utils.logging", "transformers.utils.logging")
_lock = threading.Lock()


def _silence(logging_module: Any) -> None:
    logging_module.set_verbosity_error()
    logging_module.disable_progress_bar()


class _SilenceOnImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of the libraries' logging modules so they are silenced as soon as they exist."""

    def find_spec(self, name: str, path: Any, target: Any = None):
        if name not in LOGGING_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _SilencingLoader(spec.loader)
                return spec
        return None


class _SilencingLoader(importlib.abc.Loader):
    def __init__(self, inner: Any):
        self.inner = inner

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        _silence(module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, resource readers...
        return getattr(self.inner, name)


def quiet_hf() -> None:
    """Silence diffusers/transformers loading bars and info logs (our own progress bars say what happens): now
    if imported, else as soon as they are (idempotent, thread-safe)."""
    with _lock:
        for name in LOGGING_MODULES:
            if name in sys.modules:
                _silence(sys.modules[name])
        if not any(isinstance(f, _SilenceOnImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _SilenceOnImport())
