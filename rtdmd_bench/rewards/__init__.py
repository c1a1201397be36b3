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
_GENEVAL_FILES = ("geneval/mask2former-swin-small-coco-instance", "geneval/clip-vit-large-patch14-openai")
_GENEVAL_FETCH = (("facebook/mask2former-swin-small-coco-instance", _HF_MODEL_PATTERNS, _GENEVAL_FILES[0]),
                  ("timm/vit_large_patch14_clip_224.openai", "open_clip_config.json,open_clip_model.safetensors",
                   _GENEVAL_FILES[1]))
REWARDS.add(RewardSpec(
    name="geneval", target="rtdmd_bench.rewards.geneval:GenEval",
    description="GenEval: Mask2Former (COCO instance) detections + CLIP colour classifier + the official rules",
    version="geneval-m2f-hf-1", units="correct (0/1)", higher_is_better=True, differentiable=False,
    value_range=(0.0, 1.0), typical_range=(0.4, 0.95), needs_prompt=False, needs_metadata=True,
    headline="macro_over_tags",
    weight_files=_GENEVAL_FILES, fetch=_GENEVAL_FETCH,
))
REWARDS.add(RewardSpec(
    name="geneval_partial", target="rtdmd_bench.rewards.geneval_partial:GenEvalPartial",
    description="GenEval partial credit (the RTDMD reference's training reward: mean of per-clause count/colour/"
                "position credits over all detections); evaluation uses the official 0/1 geneval",
    version="geneval-partial-rtdmd-1", units="partial credit (mean of clause credits)", higher_is_better=True,
    differentiable=False, value_range=None, typical_range=(0.3, 0.95), needs_prompt=False, needs_metadata=True,
    weight_files=_GENEVAL_FILES, fetch=_GENEVAL_FETCH,
    options=(("position_quirk", "true"),),
))
REWARDS.add(RewardSpec(
    name="hpsv3", target="rtdmd_bench.rewards.hpsv3:HPSv3",
    description="HPSv3: Qwen2-VL-7B-Instruct + reward head at the <|Reward|> token; mu of the predicted (mu, sigma)",
    version="hpsv3-qwen2vl7b-1", units="mu of the reward head", higher_is_better=True, differentiable=True,
    value_range=None, typical_range=(8.0, 17.0), needs_prompt=True,
    weight_files=("hpsv3/HPSv3.safetensors", "hpsv3/Qwen2-VL-7B-Instruct"),
    fetch=(("MizzenAI/HPSv3", "HPSv3.safetensors", "hpsv3"),
           # config, tokenizer, chat template and processor config only: HPSv3.safetensors holds every weight
           ("Qwen/Qwen2-VL-7B-Instruct", "*.json,merges.txt", "hpsv3/Qwen2-VL-7B-Instruct")),
))
REWARDS.add(RewardSpec(
    name="geneval2", target="rtdmd_bench.rewards.geneval2:GenEval2",
    description="GenEval2 Soft-TIFA: Qwen3-VL-8B-Instruct next-token probability of each atom's answer, "
                "geometric mean per prompt",
    version="soft-tifa-gm-qwen3vl8b-1", units="geometric mean of VQA probs", higher_is_better=True,
    differentiable=False, value_range=(0.0, 1.0), typical_range=(0.15, 0.5), needs_prompt=False,
    needs_metadata=True,
    weight_files=("geneval2/Qwen3-VL-8B-Instruct",),
    fetch=(("Qwen/Qwen3-VL-8B-Instruct", _HF_MODEL_PATTERNS, "geneval2/Qwen3-VL-8B-Instruct"),),
    options=(("aggregation", "gm"), ("batched", "true"), ("max_pairs", "64")),
))
_OCR_HOST = "https://www.modelscope.cn/models/RapidAI/RapidOCR/resolve/v3.10.0/onnx/PP-OCRv4"
REWARDS.add(RewardSpec(
    name="ocr", target="rtdmd_bench.rewards.ocr:OCR",
    description="OCR text rendering: 1 - min(Levenshtein, len)/len of the quoted text read by PP-OCR "
                "(RapidOCR on onnxruntime; 0 distance when the text is contained)",
    version="ocr-ppocr-1", units="1 - normalised edit distance", higher_is_better=True, differentiable=False,
    value_range=(0.0, 1.0), typical_range=(0.5, 0.95), needs_prompt=True,
    # the default model ships inside the rapidocr wheel; the PaddleOCR-2.9 English pair (the reference's
    # lang="en") is optional, fetched from RapidOCR's model hosting with the sha256 its model table records
    fetch_urls=((f"{_OCR_HOST}/det/en_PP-OCRv3_det_mobile.onnx",
                 "ea07c15d38ac40cd69da3c493444ec75b44ff23840553ff8ba102c1219ed39c2",
                 "ocr/ppocrv4-en/en_PP-OCRv3_det_mobile.onnx"),
                (f"{_OCR_HOST}/rec/en_PP-OCRv4_rec_mobile.onnx",
                 "e8770c967605983d1570cdf5352041dfb68fa0c21664f49f47b155abd3e0e318",
                 "ocr/ppocrv4-en/en_PP-OCRv4_rec_mobile.onnx")),
    options=(("model", "ppocrv6-small"), ("text_score", "0.5")),
))


def _write_tiny_rewards(root: Path) -> None:
    from rtdmd_bench.hf import quiet_hf
    from rtdmd_bench.rewards.tiny import write_tiny_rewards
    from rtdmd_bench.seeds import torch_seeded

    quiet_hf()
    with torch_seeded(0):
        write_tiny_rewards(root)


TINY_PART = ("rewards", _write_tiny_rewards)  # the scorers' part of ``--weights tiny`` (weights.ensure_tiny_part)


class RewardOptionsError(RegistryError):
    """Unknown or ill-typed reward options (the message names the reward, the key and the valid ones)."""


def reward_spec(name: str) -> RewardSpec:
    """Spec of a registered reward, or of a ``"module:Attr"`` plugin class (its ``spec`` attribute)."""
    if name in REWARDS or ":" not in name:
        return REWARDS.spec(name)
    spec = getattr(REWARDS.get(name), "spec", None)
    if not isinstance(spec, RewardSpec):
        raise RegistryError(f"reward plugin {name!r} has no RewardSpec 'spec' attribute")
    return spec


def reward_options(name: str, options: dict[str, Any] | None):
    """The typed options object of reward ``name`` (its class's ``Options`` dataclass), or None.

    Raises:
        RewardOptionsError: options given to a reward without options, or an unknown key / wrong type.
    """
    cls = REWARDS.get(name)
    options_cls = getattr(cls, "Options", None)
    if options_cls is None:
        if options:
            raise RewardOptionsError(f"reward {name!r} takes no options (got {sorted(options)})")
        return None
    from rtdmd_bench.config import ConfigError
    from rtdmd_bench.config import build as build_config

    try:
        return build_config(options_cls, dict(options or {}), prefix=f"reward_options.{name}.")
    except (ConfigError, ValueError) as exc:  # ValueError: the Options class's own checks
        raise RewardOptionsError(str(exc)) from None


def check_option_names(name: str, options: dict[str, Any] | None) -> None:
    """Torch-free check of option NAMES against ``spec.options`` (plans call it before any model loads)."""
    known = [k for k, _ in reward_spec(name).options]
    unknown = sorted(set(options or {}) - set(known))
    if unknown:
        valid = ", ".join(f"{k} (default {v})" for k, v in reward_spec(name).options) or "none"
        raise RewardOptionsError(f"unknown option(s) {unknown} for reward {name!r}; valid: {valid}")


def build(name: str, weights: str | Path | None = None, device: Any = "cpu", dtype: Any = None,
          options: dict[str, Any] | None = None):
    """Build reward ``name`` (registry name or ``"module:Attr"``) from the weights root.

    Args:
        name: reward name.
        weights: weights root directory, ``"tiny"`` for the tiny random weights, or None for the default
            root (``$RTDMD_BENCH_WEIGHTS``).
        device: torch device.
        dtype: parameter dtype (default float32).
        options: reward options (``spec.options`` names), e.g. ``{"model": "ppocrv4-en"}`` for ``ocr``.

    Returns:
        A frozen ``Reward`` module in eval mode on ``device``.
    """
    reward_spec(name)
    cls = REWARDS.get(name)
    opts = reward_options(name, options)
    from rtdmd_bench.weights import resolve_root

    root = resolve_root(weights, TINY_PART)
    factory = getattr(cls, "from_weights", None)
    kwargs = {} if opts is None else {"options": opts}
    module = factory(root, device=device, dtype=dtype, **kwargs) if factory is not None else cls(**kwargs)
    module = module.to(device)
    if dtype is not None:
        module = module.to(dtype)
    return module.freeze()


def reward_identity(name: str, weights: str | Path | None = None, options: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """What a number of reward ``name`` was computed with: ``{version, units, options[, files]}``.

    ``version``/``units`` are the spec's unless an option changes them (e.g. GenEval2's arithmetic mean, the
    OCR model); ``files`` lists ``{name, bytes, sha256}`` of model files where a reward records them (OCR).
    Computed from the options and the weights root without loading any model.
    """
    spec = reward_spec(name)
    cls = REWARDS.get(name)
    opts = reward_options(name, options)
    identity = getattr(cls, "identity", None)
    if identity is None:
        import dataclasses

        return {"version": spec.version, "units": spec.units,
                "options": dataclasses.asdict(opts) if opts is not None else {}}
    from rtdmd_bench.weights import resolve_root

    return identity(resolve_root(weights, TINY_PART), opts)
