"""Hugging Face library plumbing shared by every layer: silencing diffusers/transformers loading output."""

from __future__ import annotations


def quiet_hf() -> None:
    """Silence diffusers/transformers loading bars and info logs (our own progress bars say what happens)."""
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()


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
