"""LoRA stacks merged into a transformer's weights (ALGORITHM.md §7.1 step 2, §9 item 20).

Accepted inputs (format detected from the files; ``models.lora_refs`` turns ``--lora`` arguments into files):

* ``.pt`` / ``.pth`` / ``.bin``: the reference's LoRA-only state dict of ``lora_A`` / ``lora_B`` pairs
  (``generator_ema.pt``); ``r`` / ``alpha`` from an ``adapter_config.json`` next to the file, else the reference's
  32/64;
* a PEFT adapter dir (``adapter_config.json`` + ``adapter_model.safetensors|.bin``, or diffusers'
  ``pytorch_lora_weights.safetensors``), or a dir holding one in ``transformer/``;
* diffusers / peft ``.safetensors`` (``transformer.<module>.lora_A.weight`` / ``lora_B``, what ``save_lora_weights``
  and diffusers' training scripts write): ``r``/``lora_alpha`` from the ``lora_adapter_metadata`` header when
  present, per-module ``.alpha`` keys (kohya ``lora_down`` / ``lora_up``), else ``alpha = r`` (scale 1, the
  diffusers convention); other layouts go through the pipeline's ``lora_state_dict`` converter.

Per module the scale is ``alpha_m / r_m`` (``module_scales``: one home, also used by the diffusers export, so
diffusers' ``fuse_lora`` and this merge compute the same float) times the user's ``:SCALE``. Each file is merged in
order: ``W ← W + s·(B·A)``, the product in fp32, added in the parameter dtype (a transposed delta is accepted).
Every key of a LoRA must land on a weight of the model: unmatched keys (another model's LoRA, text-encoder LoRAs,
unknown layouts) are an error that lists them, never a silent no-op. A LoRA that declares its family (its
``training.json`` base model, or the ``rtdmd_bench.family`` header of our diffusers export) must match the model's.

A ``training.json`` beside a LoRA (written by the trainers' export: stage, trainer, rewards, base_model, steps)
is copied into its merge record as ``training``; ``describe()`` turns the reward names into ``training_rewards``.
Keys lose wrapper segments (``module``, ``_orig_mod``, FSDP) and the leading ``base_model.model.`` / ``transformer.``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtdmd_bench.io import sha256_file

DEFAULT_RANK, DEFAULT_ALPHA = 32, 64
WRAPPER_SEGMENTS = frozenset({"module", "_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"})
LEADING_PREFIXES = ("base_model.model.", "transformer.")
_KEY = re.compile(r"^(?P<mod>.+?)\.(?P<kind>lora_A|lora_B|lora_down|lora_up)(?:\.[^.]+)?\.weight$")
_WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin", "pytorch_lora_weights.safetensors")
METADATA_KEY = "lora_adapter_metadata"  # diffusers' safetensors header key (LoraBaseMixin.write_lora_layers)
FAMILY_KEY = "rtdmd_bench.family"       # our export's header key naming the generator family
MAX_LISTED = 8


class LoraError(ValueError):
    """A LoRA file is unreadable, malformed, or does not fit the model."""


@dataclass(frozen=True)
class LoraFile:
    """One resolved LoRA input: the weight file, its format, its r/alpha convention and its sha256.

    ``rank``/``alpha`` None means ``alpha = r`` for every module (scale 1, the diffusers convention for a file
    without alpha information). ``alpha_pattern`` / ``rank_pattern`` are peft's per-module exceptions.
    """

    path: Path
    weights: Path
    format: str  # "pt" | "peft" | "safetensors"
    rank: int | None
    alpha: float | None
    sha256: str
    use_rslora: bool = False
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    rank_pattern: dict[str, int] = field(default_factory=dict)
    family: str | None = None


def _peft_config(data: dict[str, Any], rank: int | None, alpha: float | None) -> dict[str, Any]:
    return {"rank": int(data.get("r", rank)) if data.get("r", rank) is not None else None,
            "alpha": float(data.get("lora_alpha", alpha)) if data.get("lora_alpha", alpha) is not None else None,
            "use_rslora": bool(data.get("use_rslora", False)),
            "alpha_pattern": {str(k): float(v) for k, v in (data.get("alpha_pattern") or {}).items()},
            "rank_pattern": {str(k): int(v) for k, v in (data.get("rank_pattern") or {}).items()}}


def _config_file(folder: Path) -> dict[str, Any] | None:
    cfg = folder / "adapter_config.json"
    if not cfg.is_file():
        return None
    try:
        data = json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise LoraError(f"{cfg} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise LoraError(f"{cfg} must be a JSON object")
    return data


def safetensors_header(path: Path) -> dict[str, str]:
    """The string metadata of a ``.safetensors`` file's header (empty when none)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for a corrupt header (or a pickle)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise LoraError(f"LoRA {path} is not a readable .safetensors file ({type(exc).__name__}: {detail})") from None


def header_adapter_config(header: dict[str, str]) -> dict[str, Any] | None:
    """The transformer's LoRA config from diffusers' ``lora_adapter_metadata`` header (prefix ``transformer.``
    stripped; peft's unprefixed layout accepted), or None."""
    raw = header.get(METADATA_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise LoraError(f"malformed {METADATA_KEY} header (not JSON)") from None
    if not isinstance(data, dict):
        raise LoraError(f"malformed {METADATA_KEY} header (not a JSON object)")
    if any("." in k for k in data):  # diffusers packs one config per component: keep the transformer's
        return {k.split(".", 1)[1]: v for k, v in data.items() if k.startswith("transformer.")} or None
    return data


def resolve(path: str | Path, rank: int = DEFAULT_RANK, alpha: float = DEFAULT_ALPHA) -> LoraFile:
    """Detect the format of ``path`` and find its weight file and r/alpha convention."""
    path = Path(path)
    if path.is_dir():
        folder = path / "transformer" if (path / "transformer" / "adapter_config.json").is_file() else path
        for name in _WEIGHT_NAMES:
            if (folder / name).is_file():
                return _file(path, folder / name, "peft", rank, alpha)
        raise LoraError(f"LoRA dir {path} holds none of {_WEIGHT_NAMES} (also looked in {path / 'transformer'})")
    if not path.is_file():
        raise LoraError(f"LoRA file {path} does not exist")
    return _file(path, path, "safetensors" if path.suffix == ".safetensors" else "pt", rank, alpha)


def _file(path: Path, weights: Path, fmt: str, rank: int, alpha: float) -> LoraFile:
    header = safetensors_header(weights) if weights.suffix == ".safetensors" else {}
    config = _config_file(weights.parent) or header_adapter_config(header)
    if config is not None:
        conv = _peft_config(config, rank, alpha)
    elif weights.suffix == ".safetensors":  # diffusers convention: no alpha information means alpha = r
        conv = _peft_config({}, None, None)
    else:  # the reference's raw .pt: r=32, alpha=64
        conv = _peft_config({}, rank, alpha)
    return LoraFile(path, weights, fmt, sha256=sha256_file(weights), family=header.get(FAMILY_KEY), **conv)


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


def declared_family(lf: LoraFile, training: dict[str, Any] | None) -> tuple[str | None, str]:
    """The generator family a LoRA says it was made for, and where it says so (``(None, "")`` when unknown)."""
    if lf.family:
        return lf.family, f"the {FAMILY_KEY} header of {lf.weights.name}"
    base = (training or {}).get("base_model")
    if base:
        from rtdmd_bench.models import MODELS

        if str(base) in MODELS:
            return MODELS.spec(str(base)).family, f"training.json base_model {base!r}"
    return None, ""


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


def pair_modules(sd: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Group a LoRA state dict by target module.

    Returns:
        ``({module: {"A": down [r,in], "B": up [out,r], "alpha"?: float}}, leftover keys)``; leftovers are the
        keys that are not part of a complete ``lora_A``/``lora_B`` (or ``lora_down``/``lora_up``) pair.
    """
    out: dict[str, dict[str, Any]] = {}
    keys: dict[str, list[str]] = {}
    leftovers = []
    for key, value in sd.items():
        clean = strip_prefixes(key)
        if clean.endswith(".alpha"):
            mod = clean[: -len(".alpha")]
            out.setdefault(mod, {})["alpha"] = float(value)
            keys.setdefault(mod, []).append(key)
            continue
        m = _KEY.match(clean)
        if m:
            out.setdefault(m["mod"], {})["A" if m["kind"] in ("lora_A", "lora_down") else "B"] = value
            keys.setdefault(m["mod"], []).append(key)
        else:
            leftovers.append(key)
    pairs = {mod: d for mod, d in out.items() if "A" in d and "B" in d}
    leftovers += [k for mod in out if mod not in pairs for k in keys[mod]]
    return pairs, leftovers


def module_scales(pairs: dict[str, dict[str, Any]], lf: LoraFile) -> dict[str, tuple[float, int]]:
    """``{module: (alpha_m, r_m)}``: the scale of each pair is ``alpha_m / r_m`` (``/ sqrt(r_m)`` with rslora).

    A per-module ``alpha`` key wins (with the pair's own rank, the kohya convention), then peft's
    ``alpha_pattern``/``rank_pattern``, then the file's ``alpha``/``rank``; without any (a diffusers file with no
    alpha information) ``alpha_m = r_m`` = the pair's rank.
    """
    out = {}
    for mod, d in pairs.items():
        r_pair = int(d["A"].shape[0])
        if "alpha" in d:
            out[mod] = (float(d["alpha"]), r_pair)
        elif lf.alpha is None:
            out[mod] = (float(r_pair), r_pair)
        else:
            out[mod] = (float(lf.alpha_pattern.get(mod, lf.alpha)), int(lf.rank_pattern.get(mod, lf.rank or r_pair)))
    return out


def _scale(alpha_m: float, r_m: int, lf: LoraFile, user_scale: float) -> float:
    """peft's ``scaling = lora_alpha / r`` (``/ sqrt(r)`` with rslora), times ``fuse_lora(lora_scale)``."""
    base = alpha_m / math.sqrt(r_m) if lf.use_rslora else alpha_m / r_m
    return base * user_scale if user_scale != 1.0 else base


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", ... ({len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")


def plan_merge(module: Any, pairs: dict[str, dict[str, Any]], lf: LoraFile, user_scale: float = 1.0
               ) -> tuple[list[tuple[Any, Any]], list[str]]:
    """The ``(weight parameter, fp32 delta)`` of every pair, or the problems: modules with no weight in
    ``module`` and deltas whose shape fits no weight. Nothing is modified."""
    params = dict(module.named_parameters())
    scales = module_scales(pairs, lf)
    plan, problems = [], []
    for mod, d in pairs.items():
        weight = params.get(f"{mod}.weight")
        if weight is None:
            problems.append(f"{mod} (no such module)")
            continue
        a, b = d["A"].float().to(weight.device), d["B"].float().to(weight.device)
        delta = _scale(*scales[mod], lf, user_scale) * (b.flatten(1) @ a.flatten(1))
        if delta.shape != weight.shape and delta.T.shape == weight.shape:
            delta = delta.T
        if delta.numel() != weight.numel():
            problems.append(f"{mod} (delta {tuple(delta.shape)} vs weight {tuple(weight.shape)})")
            continue
        plan.append((weight, delta.reshape(weight.shape)))
    return plan, problems


def merge_pairs(module: Any, pairs: dict[str, dict[str, Any]], lf: LoraFile, user_scale: float = 1.0) -> int:
    """Merge ``W += s·B@A`` for every pair into ``module`` (all or nothing); returns how many merged.

    Raises:
        LoraError: a pair names no weight of ``module`` or does not fit its shape (listed).
    """
    import torch

    plan, problems = plan_merge(module, pairs, lf, user_scale)
    if problems:
        raise LoraError(f"LoRA {lf.path}: {len(problems)} of {len(pairs)} modules do not fit the model: "
                        f"{_listing(problems)}")
    with torch.no_grad():
        for weight, delta in plan:
            weight.add_(delta.to(weight.dtype))
    return len(plan)


def _as_ref(item: Any) -> tuple[str, Path, float, dict[str, Any]]:
    """``(recorded reference, path, scale, extra record fields)`` of a path or a ``lora_refs.LoraRef``."""
    if hasattr(item, "path") and hasattr(item, "scale"):
        extra = {"hub": {"repo": item.hub[0], "file": item.hub[1], "revision": item.hub[2]}} if item.hub else {}
        return item.ref, Path(item.path), float(item.scale), extra
    return str(item), Path(item), 1.0, {}


def load_pairs(lf: LoraFile, module: Any, converter: Callable[[str], Any] | None
               ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The LoRA pairs of ``lf`` and the problems left (unmatched modules, keys that are no LoRA pair). A
    ``.safetensors`` file that does not fit as-is goes through ``converter`` (kohya / XLabs / ai-toolkit layouts)."""
    pairs, leftovers = pair_modules(read_state_dict(lf.weights))
    problems = [f"{k} (not a lora_A/lora_B pair)" for k in leftovers] + plan_merge(module, pairs, lf)[1]
    if problems and converter is not None and lf.format == "safetensors":
        try:
            converted = converter(str(lf.weights))
        except Exception:  # the converter rejects layouts it does not know: report ours
            converted = None
        if converted is not None:
            sd = converted[0] if isinstance(converted, tuple) else converted
            c_pairs, c_left = pair_modules(sd)
            c_problems = [f"{k} (not a lora_A/lora_B pair)" for k in c_left] + plan_merge(module, c_pairs, lf)[1]
            if c_pairs and not c_problems:
                return c_pairs, []
    return pairs, problems


def merge_lora_stack(module: Any, loras: Sequence[Any], rank: int = DEFAULT_RANK, alpha: float = DEFAULT_ALPHA,
                     converter: Callable[[str], Any] | None = None, family: str | None = None) -> list[dict[str, Any]]:
    """Merge each LoRA into ``module`` in order; returns ``[{path, sha256, format, rank, alpha, scale, merged, ...}]``.

    Args:
        module: the transformer (``torch.nn.Module``) whose weights change in place.
        loras: LoRA files / dirs (paths, or ``lora_refs.LoraRef`` with a scale), merged first to last.
        rank / alpha: r/alpha for ``.pt`` files without ``adapter_config.json`` (reference: 32/64).
        converter: ``path -> state dict`` (a diffusers pipeline's ``lora_state_dict``) tried when a
            ``.safetensors`` file's keys do not fit as-is.
        family: the model's generator family, checked against the family a LoRA declares.

    Raises:
        LoraError: a file has no LoRA pairs, keys that fit no weight (listed), or declares another family.
    """
    records = []
    for item in loras:
        ref, path, user_scale, extra = _as_ref(item)
        lf = resolve(path, rank, alpha)
        training = training_info(lf)
        declared, where = declared_family(lf, training)
        if family and declared and declared != family:
            raise LoraError(f"LoRA {ref} is for the {declared} family ({where}), but the model is {family}; "
                            f"use it with a {declared} model")
        pairs, problems = load_pairs(lf, module, converter)
        if not pairs:
            raise LoraError(f"LoRA {ref} holds no lora_A/lora_B pairs (keys: {_listing(problems) or 'none'})")
        if problems:
            names = ", ".join(n for n, _ in list(module.named_parameters())[:3])
            raise LoraError(f"LoRA {ref}: {len(problems)} entries fit no weight of this {family or 'model'} "
                            f"transformer: {_listing(problems)} (model parameters look like: {names}). Is it a LoRA "
                            f"for another model, or of the text encoder?")
        merged = merge_pairs(module, pairs, lf, user_scale)
        rec = {"path": ref, "sha256": lf.sha256, "format": lf.format, "rank": lf.rank, "alpha": lf.alpha,
               "merged": merged, "training": training, **extra}
        if user_scale != 1.0:
            rec["scale"] = user_scale
        records.append(rec)
    return records
