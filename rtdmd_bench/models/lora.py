"""LoRA stacks merged into a transformer's weights (ALGORITHM.md §7.1 step 2, §9 item 20).

Accepted inputs (format detected from the files):

* ``.pt`` / ``.pth`` / ``.bin``: the reference's LoRA-only state dict of ``lora_A`` / ``lora_B`` pairs
  (``generator_ema.pt``); ``r`` / ``alpha`` from an ``adapter_config.json`` next to the file, else the defaults 32/64;
* a PEFT adapter dir (``adapter_config.json`` + ``adapter_model.safetensors|.bin``), or a dir holding one in
  ``transformer/``;
* diffusers LoRA ``.safetensors`` (``transformer.<module>.lora_A.weight`` / ``lora_B``, or ``lora_down`` / ``lora_up``
  with optional per-module ``.alpha``); other layouts go through the pipeline's ``lora_state_dict`` converter.

A ``training.json`` beside a LoRA (written by the trainers' export: stage, trainer, rewards, base_model, steps)
is copied into its merge record as ``training``; ``describe()`` turns the reward names into ``training_rewards``.

Keys lose wrapper segments (``module``, ``_orig_mod``, FSDP) and the leading ``base_model.model.`` / ``transformer.``. Each file is merged in
order: ``W ← W + (alpha/r)·(B·A)``, the product in fp32, added in the parameter dtype (a transposed delta is
accepted). A file that matches no weight of the model is an error, never a silent no-op.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtdmd_bench.io import sha256_file

DEFAULT_RANK, DEFAULT_ALPHA = 32, 64
WRAPPER_SEGMENTS = frozenset({"module", "_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"})
LEADING_PREFIXES = ("base_model.model.", "transformer.")
_KEY = re.compile(r"^(?P<mod>.+?)\.(?P<kind>lora_A|lora_B|lora_down|lora_up)(?:\.[^.]+)?\.weight$")
_WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin", "pytorch_lora_weights.safetensors")


class LoraError(ValueError):
    """A LoRA file is unreadable, malformed, or matches no weight of the model."""


@dataclass(frozen=True)
class LoraFile:
    """One resolved LoRA input: the weight file, its format, the r/alpha to use and its sha256."""

    path: Path
    weights: Path
    format: str  # "pt" | "peft" | "safetensors"
    rank: int
    alpha: float
    sha256: str


def _config(folder: Path, rank: int, alpha: float) -> tuple[int, float]:
    cfg = folder / "adapter_config.json"
    if not cfg.is_file():
        return rank, alpha
    data = json.loads(cfg.read_text())
    return int(data.get("r", rank)), float(data.get("lora_alpha", alpha))


def resolve(path: str | Path, rank: int = DEFAULT_RANK, alpha: float = DEFAULT_ALPHA) -> LoraFile:
    """Detect the format of ``path`` and find its weight file and r/alpha."""
    path = Path(path)
    if path.is_dir():
        folder = path / "transformer" if (path / "transformer" / "adapter_config.json").is_file() else path
        for name in _WEIGHT_NAMES:
            if (folder / name).is_file():
                r, a = _config(folder, rank, alpha)
                return LoraFile(path, folder / name, "peft", r, a, sha256_file(folder / name))
        raise LoraError(f"LoRA dir {path} holds none of {_WEIGHT_NAMES} (also looked in {path / 'transformer'})")
    if not path.is_file():
        raise LoraError(f"LoRA file {path} does not exist")
    fmt = "safetensors" if path.suffix == ".safetensors" else "pt"
    r, a = _config(path.parent, rank, alpha)
    return LoraFile(path, path, fmt, r, a, sha256_file(path))


def training_info(lf: LoraFile) -> dict[str, Any] | None:
    """``training.json`` beside the weight file (or in the LoRA dir), with its sha256; None when absent.

    Raises:
        LoraError: the file exists but is not a JSON object with a ``rewards`` mapping.
    """
    for folder in dict.fromkeys((lf.weights.parent, lf.path if lf.path.is_dir() else lf.path.parent)):
        f = folder / "training.json"
        if f.is_file():
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise LoraError(f"{f} is not valid JSON: {e}") from e
            if not isinstance(data, dict) or not isinstance(data.get("rewards", {}), dict):
                raise LoraError(f"{f} must be an object with a 'rewards' mapping of name -> weight")
            return {**data, "path": str(f), "sha256": sha256_file(f)}
    return None


def training_reward_names(records: Sequence[dict[str, Any]]) -> list[str]:
    """Reward names optimised by any LoRA of a stack (nonzero ``rewards`` and ``bp_rewards``), first-seen order."""
    names: dict[str, None] = {}
    for r in records:
        t = r.get("training") or {}
        for key in ("rewards", "bp_rewards"):
            names.update({str(k): None for k, w in (t.get(key) or {}).items() if float(w) != 0.0})
    return list(names)


def read_state_dict(weights: Path) -> dict[str, Any]:
    """Tensors of a ``.safetensors`` or a ``torch.load(weights_only=True)`` file (nested ``state_dict`` unwrapped).

    Raises:
        LoraError: the file is not what its name says (a pickle named ``.safetensors``), holds objects other than
            tensors (refused: LoRA files are untrusted), is truncated, or is not a mapping of tensors.
    """
    import pickle

    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights))
        import torch

        sd = torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise LoraError(f"LoRA {weights} holds objects other than tensors; refusing to unpickle it (LoRA files are "
                        f"loaded weights-only). Use the trainer's export or a safetensors file.") from exc
    except Exception as exc:  # safetensors' header errors, truncated zips, a pickle named .safetensors
        if isinstance(exc, OSError) and not isinstance(exc, IsADirectoryError):
            raise
        raise LoraError(f"LoRA {weights} is not a readable {weights.suffix or 'weights'} file "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    for key in ("state_dict", "model", "generator"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise LoraError(f"{weights} does not hold a state dict")
    return sd


def strip_prefixes(key: str) -> str:
    """A parameter name without wrapper segments (DDP ``module``, ``torch.compile`` ``_orig_mod``, FSDP/checkpoint
    wrappers: anywhere in the key) and leading container prefixes (PEFT ``base_model.model.``, diffusers
    ``transformer.``): the one normalisation of state-dict keys (LoRA files, EMA shadows, exports)."""
    key = ".".join(p for p in key.split(".") if p not in WRAPPER_SEGMENTS)
    changed = True
    while changed:
        changed = False
        for p in LEADING_PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def pair_modules(sd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Group a LoRA state dict by target module: ``{module: {"A": down [r,in], "B": up [out,r], "alpha": ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in sd.items():
        key = strip_prefixes(key)
        if key.endswith(".alpha"):
            out.setdefault(key[: -len(".alpha")], {})["alpha"] = float(value)
            continue
        m = _KEY.match(key)
        if m:
            slot = "A" if m["kind"] in ("lora_A", "lora_down") else "B"
            out.setdefault(m["mod"], {})[slot] = value
    return {mod: d for mod, d in out.items() if "A" in d and "B" in d}


def merge_pairs(module: Any, pairs: dict[str, dict[str, Any]], rank: int, alpha: float) -> int:
    """Merge ``W += (alpha/r)·B@A`` into ``module``'s ``<mod>.weight`` parameters; returns how many merged.

    ``rank``/``alpha`` come from the adapter config (or defaults); a per-module ``alpha`` key overrides alpha and
    then uses the pair's own rank (the diffusers/kohya convention).
    """
    import torch

    params = dict(module.named_parameters())
    merged = 0
    with torch.no_grad():
        for mod, d in pairs.items():
            weight = params.get(f"{mod}.weight")
            if weight is None:
                continue
            a, b = d["A"].float().to(weight.device), d["B"].float().to(weight.device)
            scale = d["alpha"] / a.shape[0] if "alpha" in d else alpha / rank
            delta = scale * (b.flatten(1) @ a.flatten(1))
            if delta.shape != weight.shape and delta.T.shape == weight.shape:
                delta = delta.T
            if delta.numel() != weight.numel():
                raise LoraError(f"LoRA delta for {mod} has shape {tuple(delta.shape)}, weight {tuple(weight.shape)}")
            weight.add_(delta.reshape(weight.shape).to(weight.dtype))
            merged += 1
    return merged


def merge_lora_stack(module: Any, paths: Sequence[str | Path], rank: int = DEFAULT_RANK, alpha: float = DEFAULT_ALPHA,
                     converter: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Merge each LoRA in ``paths`` into ``module`` in order; returns ``[{path, sha256, format, rank, alpha, merged}]``.

    Args:
        module: the transformer (``torch.nn.Module``) whose weights change in place.
        paths: LoRA files / dirs, merged first to last.
        rank / alpha: fallback r/alpha for files without ``adapter_config.json`` (reference: 32/64).
        converter: ``path -> state dict`` (e.g. a diffusers pipeline's ``lora_state_dict``) tried when a
            ``.safetensors`` file's keys match nothing as-is (kohya / XLabs layouts).

    Raises:
        LoraError: a file has no LoRA pairs or none of them names a weight of ``module``.
    """
    records = []
    for p in paths:
        lf = resolve(p, rank, alpha)
        pairs = pair_modules(read_state_dict(lf.weights))
        merged = merge_pairs(module, pairs, lf.rank, lf.alpha)
        if merged == 0 and converter is not None and lf.format == "safetensors":
            converted = converter(str(lf.weights))
            pairs = pair_modules(converted[0] if isinstance(converted, tuple) else converted)
            merged = merge_pairs(module, pairs, lf.rank, lf.alpha)
        if merged == 0:
            sample = ", ".join(sorted(pairs)[:3]) or "no lora_A/lora_B pairs at all"
            names = ", ".join(n for n, _ in list(module.named_parameters())[:3])
            raise LoraError(f"LoRA {lf.path} matched no weight of the model (LoRA modules: {sample}; "
                            f"model parameters look like: {names})")
        records.append({"path": str(lf.path), "sha256": lf.sha256, "format": lf.format, "rank": lf.rank,
                        "alpha": lf.alpha, "merged": merged, "training": training_info(lf)})
    return records
