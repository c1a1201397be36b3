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


def hub_is_offline() -> bool:
    """True when huggingface_hub must not reach the network (``HF_HUB_OFFLINE`` set, read now, not at import)."""
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_cache_dir() -> str:
    """The Hugging Face cache folder in effect now (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else the default)."""
    import os

    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def hub_error_line(exc: BaseException) -> str:
    """One line saying why a Hugging Face Hub call failed (offline, no network, gated, missing), without the
    library's multi-line traceback text."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if hub_is_offline() or "OfflineModeIsEnabled" in name or "offline" in text.lower():
        why = "the Hugging Face Hub is offline here (HF_HUB_OFFLINE=1)"
    elif name in ("GatedRepoError",) or " 401 " in f" {text} " or " 403 " in f" {text} ":
        why = "the repository is gated or private: accept its license on huggingface.co and run `hf auth login`"
    elif name in ("RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError",
                  "RemoteEntryNotFoundError") or " 404 " in f" {text} ":
        why = f"not found on the Hugging Face Hub ({name})"
    elif isinstance(exc, OSError) or "Connect" in name or "Timeout" in name:
        why = f"the Hugging Face Hub cannot be reached (no network: {name})"
    else:
        why = f"{name}: {text[:200]}"
    return why
