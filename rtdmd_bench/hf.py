"""Hugging Face library plumbing shared by every layer: silencing diffusers/transformers loading output."""

from __future__ import annotations


def quiet_hf() -> None:
    """Silence diffusers/transformers loading bars and info logs (our own progress bars say what happens)."""
    import diffusers
    import transformers

    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()
