"""Reward registry: one ``RewardSpec`` per scorer, targets imported lazily.

``build(name, weights, device, dtype)`` returns a frozen, eval-mode ``Reward`` nn.Module; the same module
serves evaluation (no grad, uint8-quantised input) and reward back-propagation (grad enabled).
Implementation classes take their ``spec`` from this table (``spec = REWARDS.spec("name")``), so the
metadata exists exactly once and is readable without importing torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rtdmd_bench.registry import Registry, RegistryError
from rtdmd_bench.rewards.spec import RewardSpec

REWARDS: Registry[RewardSpec] = Registry("reward")

REWARDS.add(RewardSpec(
    name="jpeg_compressibility", target="rtdmd_bench.rewards.cheap:JpegCompressibility",
    description="DDPO JPEG compressibility: -(JPEG size in kB) at quality 95",
    version="ddpo-q95", units="-kB", higher_is_better=True, differentiable=False,
    value_range=None, typical_range=(-200.0, 0.0), needs_prompt=False,
))
REWARDS.add(RewardSpec(
    name="saturation", target="rtdmd_bench.rewards.cheap:Saturation",
    description="mean HSV saturation of the image",
    version="hsv-mean-1", units="fraction", higher_is_better=True, differentiable=True,
    value_range=(0.0, 1.0), typical_range=(0.1, 0.6), needs_prompt=False,
))


_CLIP_L = "clip-vit-large-patch14"
_PICK = "PickScore_v1"
_LAION_H = "CLIP-ViT-H-14-laion2B-s32B-b79K"
_HF_MODEL_PATTERNS = "*.json,*.txt,*.safetensors"  # config + tokenizer + safetensors weights only
_CLIP_PROC_FILES = ("preprocessor_config.json,tokenizer_config.json,tokenizer.json,vocab.json,merges.txt,"
                    "special_tokens_map.json,config.json")

REWARDS.add(RewardSpec(
    name="clipscore", target="rtdmd_bench.rewards.clipscore:CLIPScore",
    description="CLIPScore: cosine of OpenAI CLIP ViT-L/14 image and text embeddings",
    version="clip-vit-l14-cos-1", units="cosine", higher_is_better=True, differentiable=True,
    value_range=(-1.0, 1.0), typical_range=(0.26, 0.34), needs_prompt=True,
    weight_files=(_CLIP_L,),
    fetch=(("openai/clip-vit-large-patch14", _HF_MODEL_PATTERNS, _CLIP_L),),
))
REWARDS.add(RewardSpec(
    name="aesthetic", target="rtdmd_bench.rewards.aesthetic:LaionAesthetic",
    description="LAION improved aesthetic predictor v2 (affine head on the normalised CLIP-L/14 image embedding)",
    version="laion_aesthetic_v2", units="rating (1-10 scale)", higher_is_better=True, differentiable=True,
    value_range=None, typical_range=(4.5, 6.5), needs_prompt=False,
    weight_files=(_CLIP_L, "aesthetic/sac+logos+ava1-l14-linearMSE.pth"),
    fetch=(("openai/clip-vit-large-patch14", _HF_MODEL_PATTERNS, _CLIP_L),
           ("haor/aesthetics", "sac+logos+ava1-l14-linearMSE.pth", "aesthetic")),
))
REWARDS.add(RewardSpec(
    name="pickscore", target="rtdmd_bench.rewards.pickscore:PickScore",
    description="PickScore v1: exp(logit_scale) * cosine of the Pick-a-Pic fine-tuned CLIP ViT-H/14 (raw, not /26)",
    version="pickscore_v1", units="exp(logit_scale)*cosine", higher_is_better=True, differentiable=True,
    value_range=(-100.0, 100.0), typical_range=(20.0, 25.0), needs_prompt=True,
    weight_files=(_PICK, _LAION_H),
    fetch=(("yuvalkirstain/PickScore_v1", "*.json,*.txt,pytorch_model.bin", _PICK),
           ("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", _CLIP_PROC_FILES, _LAION_H)),
))
REWARDS.add(RewardSpec(
    name="hpsv2", target="rtdmd_bench.rewards.hpsv2:HPSv2",
    description="HPSv2.1: cosine of open_clip ViT-H-14 fine-tuned on HPDv2 (longest-side resize + pad)",
    version="hpsv2.1", units="cosine", higher_is_better=True, differentiable=True,
    value_range=(-1.0, 1.0), typical_range=(0.25, 0.36), needs_prompt=True,
    weight_files=("hpsv2/HPS_v2.1_compressed.pt",),
    fetch=(("xswu/HPSv2", "HPS_v2.1_compressed.pt", "hpsv2"),),
))
REWARDS.add(RewardSpec(
    name="imagereward", target="rtdmd_bench.rewards.imagereward:ImageReward",
    description="ImageReward v1.0: BLIP ViT-L/16 + cross-attention BERT + MLP, z-scored with the published mean/std",
    version="imagereward_v1.0", units="z-score", higher_is_better=True, differentiable=True,
    value_range=None, typical_range=(-0.5, 1.6), needs_prompt=True,
    weight_files=("imagereward/ImageReward.pt", "imagereward/med_config.json", "imagereward/bert-base-uncased"),
    fetch=(("THUDM/ImageReward", "ImageReward.pt", "imagereward"),
           ("THUDM/ImageReward", "med_config.json", "imagereward"),
           ("google-bert/bert-base-uncased", "vocab.txt,tokenizer_config.json,tokenizer.json,config.json",
            "imagereward/bert-base-uncased")),
))
REWARDS.add(RewardSpec(
    name="geneval", target="rtdmd_bench.rewards.geneval:GenEval",
    description="GenEval: Mask2Former (COCO instance) detections + CLIP colour classifier + the official rules",
    version="geneval-m2f-hf-1", units="correct (0/1)", higher_is_better=True, differentiable=False,
    value_range=(0.0, 1.0), typical_range=(0.4, 0.95), needs_prompt=False, needs_metadata=True,
    metadata_keys=("tag", "include"), headline="macro_over_tags",
    weight_files=("geneval/mask2former-swin-small-coco-instance", "geneval/clip-vit-large-patch14-openai"),
    fetch=(("facebook/mask2former-swin-small-coco-instance", _HF_MODEL_PATTERNS,
            "geneval/mask2former-swin-small-coco-instance"),
           ("timm/vit_large_patch14_clip_224.openai", "open_clip_config.json,open_clip_model.safetensors",
            "geneval/clip-vit-large-patch14-openai")),
))
_OUT_OF_PROCESS = "a later issue runs it out of process in its own environment"
REWARDS.add(RewardSpec(
    name="hpsv3", target="rtdmd_bench.rewards.unavailable:Unavailable",
    description="HPSv3 (Qwen2-VL-7B reward model)", version="hpsv3", units="mu of the reward head",
    typical_range=(10.0, 16.0), needs_prompt=True, available=False,
    unavailable_reason=f"hpsv3==1.0.0 pins transformers==4.45.2, deepspeed, trl; {_OUT_OF_PROCESS}",
))
REWARDS.add(RewardSpec(
    name="geneval2", target="rtdmd_bench.rewards.unavailable:Unavailable",
    description="GenEval2 Soft-TIFA (Qwen3-VL-8B VQA)", version="geneval2", units="geometric mean of VQA probs",
    value_range=(0.0, 1.0), typical_range=(0.2, 0.45), needs_prompt=True, needs_metadata=True, available=False,
    unavailable_reason=f"needs Qwen3-VL-8B with the GenEval2 evaluation code; {_OUT_OF_PROCESS}",
))
REWARDS.add(RewardSpec(
    name="ocr", target="rtdmd_bench.rewards.unavailable:Unavailable",
    description="OCR text-rendering accuracy (PaddleOCR, 1 - edit distance / length)", version="ocr-paddle-2.9",
    units="1 - normalised edit distance", value_range=(0.0, 1.0), typical_range=(0.55, 0.8), needs_prompt=True,
    available=False,
    unavailable_reason=f"paddleocr 2.9.1 + paddlepaddle pin numpy==1.26.4 and three opencv builds; {_OUT_OF_PROCESS}",
))


class RewardUnavailableError(RegistryError):
    """A known scorer that cannot run in this environment (the message says why and what to do)."""


def reward_spec(name: str) -> RewardSpec:
    """Spec of a registered reward, or of a ``"module:Attr"`` plugin class (its ``spec`` attribute)."""
    if name in REWARDS or ":" not in name:
        return REWARDS.spec(name)
    spec = getattr(REWARDS.get(name), "spec", None)
    if not isinstance(spec, RewardSpec):
        raise RegistryError(f"reward plugin {name!r} has no RewardSpec 'spec' attribute")
    return spec


def build(name: str, weights: str | Path | None = None, device: Any = "cpu", dtype: Any = None):
    """Build reward ``name`` (registry name or ``"module:Attr"``) from the weights root.

    Args:
        name: reward name.
        weights: weights root directory, ``"tiny"`` for the tiny random weights, or None for the default
            root (``$RTDMD_BENCH_WEIGHTS``).
        device: torch device.
        dtype: parameter dtype (default float32).

    Returns:
        A frozen ``Reward`` module in eval mode on ``device``.
    """
    spec = reward_spec(name)
    if not spec.available:
        raise RewardUnavailableError(f"reward {name!r} is known but unavailable here: {spec.unavailable_reason}")
    cls = REWARDS.get(name)
    from rtdmd_bench.weights import resolve_root

    root = resolve_root(weights)
    factory = getattr(cls, "from_weights", None)
    module = factory(root, device=device, dtype=dtype) if factory is not None else cls()
    module = module.to(device)
    if dtype is not None:
        module = module.to(dtype)
    return module.freeze()
