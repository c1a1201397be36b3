"""Safe checkpoint reading and strict loading with messages that say what did not match."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys or shapes do not match the architecture it is loaded into."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, on CPU. Never unpickles code.

    ``.safetensors`` -> safetensors; anything else -> ``torch.load(weights_only=True)``. A top-level
    ``{"state_dict": ...}`` wrapper (HPS, open_clip training checkpoints) is unwrapped, and a DataParallel
    ``module.`` prefix present on every key is stripped.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not state:
        raise CheckpointMismatchError(f"{path} does not hold a non-empty state dict (got {type(state).__name__})")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with a readable report of missing/unexpected/shape keys.

    Tensors are cast to each parameter's dtype (fp16 "compressed" checkpoints load into fp32 modules).
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        def head(items):
            return ", ".join(items[:8]) + (f" ... (+{len(items) - 8})" if len(items) > 8 else "") or "none"

        raise CheckpointMismatchError(
            f"{source} does not match the architecture ({type(module).__name__}):\n"
            f"  missing keys: {head(missing)}\n  unexpected keys: {head(unexpected)}\n"
            f"  shape mismatches: {head(shapes)}"
        )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


class TokenizerVocabError(RuntimeError):
    """A tokenizer whose vocabulary does not match its model (e.g. transformers' silent 5-token fallback)."""


def check_vocab_size(tokenizer, expected: int, where: str | Path) -> None:
    """Raise TokenizerVocabError unless ``len(tokenizer) == expected``.

    transformers 5 returns a 5-token tokenizer, without raising, when a tokenizer cannot be found; token ids
    from it are garbage. Every scorer checks the size against its model's embedding table.
    """
    got = len(tokenizer) if hasattr(tokenizer, "__len__") else tokenizer.vocab_size  # open_clip: no __len__
    if got != expected:
        raise TokenizerVocabError(
            f"tokenizer loaded from {where} has {got} tokens but the model's embedding table has {expected}. "
            f"The tokenizer files are missing or belong to another model; re-run `rtdmd-bench weights fetch`."
        )
