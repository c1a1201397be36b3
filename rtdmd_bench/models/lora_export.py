"""LoRAs out to the diffusers ecosystem (``rtdmd-bench lora export``; ``train`` writes one beside its ``.pt``).

``export_diffusers(IN, DIR)`` writes ``DIR/pytorch_lora_weights.safetensors``: keys
``transformer.<module>.lora_A.weight`` / ``lora_B.weight`` (the layout ``save_lora_weights`` writes) and the
``lora_adapter_metadata`` header diffusers reads into the ``LoraConfig`` (``transformer.r``, ``lora_alpha``,
``target_modules``, ``rank_pattern`` / ``alpha_pattern`` for modules that differ). The per-module ``(alpha, r)``
come from ``models.lora.module_scales``, the same function the harness merge uses, so
``Pipeline.load_lora_weights(DIR)`` + ``fuse_lora()`` computes ``W + (alpha/r)·B·A`` with the same floats: the
merged transformer equals the harness's (tested on every tiny family). Without the header (the reference's raw
``.pt`` loaded as-is) diffusers would assume ``alpha = r`` and merge at a different scale, or skip unprefixed keys.

``export_merged(model, loras, DIR)`` writes ``DIR/transformer/`` (``save_pretrained`` of the harness-merged
transformer) for ``<Transformer class>.from_pretrained(DIR, subfolder="transformer")``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from rtdmd_bench.models.lora import (
    FAMILY_KEY,
    METADATA_KEY,
    LoraError,
    declared_family,
    module_scales,
    pair_modules,
    read_state_dict,
    resolve,
    training_info,
)

WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' LORA_WEIGHT_NAME_SAFE


def diffusers_tensors(src: str | Path) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """``(tensors, transformer LoraConfig fields, LoraFile)`` of a LoRA in diffusers' layout.

    Raises:
        LoraError: the file holds keys that are no LoRA pair (listed) or no pairs at all.
    """
    lf = resolve(src)
    pairs, leftovers = pair_modules(read_state_dict(lf.weights))
    if leftovers or not pairs:
        raise LoraError(f"LoRA {src}: cannot export keys that are no lora_A/lora_B pair: {leftovers[:8] or 'no pairs'}")
    scales = module_scales(pairs, lf)
    tensors, alphas, ranks = {}, {}, {}
    for mod, d in sorted(pairs.items()):
        a, b = d["A"].contiguous(), d["B"].contiguous()
        tensors[f"transformer.{mod}.lora_A.weight"] = a
        tensors[f"transformer.{mod}.lora_B.weight"] = b
        alpha_m, r_m = scales[mod]
        r_pair = int(a.shape[0])  # peft's r must be the tensors' rank; keep alpha/r exactly when it already is
        ranks[mod], alphas[mod] = r_pair, alpha_m if r_m == r_pair else alpha_m / r_m * r_pair
    r = Counter(ranks.values()).most_common(1)[0][0]
    alpha = Counter(alphas.values()).most_common(1)[0][0]
    config = {"r": r, "lora_alpha": alpha, "target_modules": sorted(pairs), "use_rslora": lf.use_rslora,
              "rank_pattern": {m: v for m, v in ranks.items() if v != r},
              "alpha_pattern": {m: v for m, v in alphas.items() if v != alpha},
              "lora_dropout": 0.0, "bias": "none", "init_lora_weights": True}
    return tensors, config, lf


def export_diffusers(src: str | Path, out_dir: str | Path, family: str | None = None) -> Path:
    """Write ``out_dir/pytorch_lora_weights.safetensors`` (+ the LoRA's ``training.json``); returns the file.

    Args:
        src: a LoRA the harness reads (reference ``.pt`` + optional ``adapter_config.json``, PEFT folder, diffusers
            or kohya ``.safetensors``).
        out_dir: destination folder (created).
        family: the generator family, recorded in the header (default: what the LoRA declares, if anything).
    """
    from safetensors.torch import save_file

    from rtdmd_bench.io import atomic_write_bytes

    tensors, config, lf = diffusers_tensors(src)
    training = training_info(lf)
    family = family or declared_family(lf, training)[0]
    header = {"format": "pt", METADATA_KEY: json.dumps({f"transformer.{k}": v for k, v in config.items()},
                                                       sort_keys=True)}
    if family:
        header[FAMILY_KEY] = family
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{WEIGHT_NAME}.tmp"
    save_file(tensors, str(tmp), metadata=header)
    atomic_write_bytes(out / WEIGHT_NAME, tmp.read_bytes())
    tmp.unlink()
    if training is not None:
        shutil.copyfile(training["path"], out / "training.json")
    return out / WEIGHT_NAME


def export_merged(model: str, loras: list[str], out_dir: str | Path, weights: str | None = None) -> Path:
    """Merge ``loras`` into ``model``'s transformer as evaluation does and ``save_pretrained`` it to
    ``out_dir/transformer``; returns that folder."""
    from rtdmd_bench.models import build

    gen = build(model, weights=weights, lora=loras)
    dest = Path(out_dir) / "transformer"
    gen.transformer.save_pretrained(str(dest))
    return dest
