"""transformers ``CLIPModel`` scorers' shared parts: local-dir checks, loading, image/text embeddings.

Used by clipscore (OpenAI CLIP ViT-L/14), pickscore (PickScore_v1 + the laion ViT-H-14 processor) and the
aesthetic predictor (CLIP-L/14 vision tower). Directories are plain ``save_pretrained`` folders under the
weights root; nothing here resolves hub ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from rtdmd_bench.rewards.checkpoint import check_vocab_size
from rtdmd_bench.rewards.preprocess import (
    PreprocessConfig,
    TextFeatureCache,
    clip_preprocess,
    pil_clip_preprocess,
    preprocess_config_from_processor,
)
from rtdmd_bench.weights import MissingWeightsError, require_files

MODEL_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILE_SETS = (("tokenizer.json",), ("vocab.json", "merges.txt"))
# hub repos carry preprocessor_config.json; transformers 5 save_pretrained writes processor_config.json
# with the image processor nested under "image_processor".
PROCESSOR_CONFIG_SETS = (("preprocessor_config.json",), ("processor_config.json",))


def _require_one_of(root: Path, rel: str, options, name: str, what: str) -> None:
    if any(all((root / rel / f).is_file() for f in group) for group in options):
        return
    require_files(root, [f"{rel}/{f}" for f in options[0]], name,
                  layout=f"({what}: any one of {[list(g) for g in options]} under {rel}/)\n")


def require_model_dir(root: Path, rel: str, name: str) -> Path:
    """``root/rel`` holding ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``."""
    require_files(root, [f"{rel}/config.json"], name)
    _require_one_of(root, rel, [(f,) for f in MODEL_WEIGHT_NAMES], name, "model weights")
    return root / rel


def require_processor_dir(root: Path, rel: str, name: str) -> Path:
    """``root/rel`` holding a processor config, ``tokenizer_config.json`` and tokenizer files."""
    require_files(root, [f"{rel}/tokenizer_config.json"], name)
    _require_one_of(root, rel, PROCESSOR_CONFIG_SETS, name, "image processor config")
    _require_one_of(root, rel, TOKENIZER_FILE_SETS, name, "tokenizer files")
    return root / rel


def read_preprocess_config(processor_dir: Path) -> PreprocessConfig:
    """Image geometry from ``preprocessor_config.json`` (hub form) or ``processor_config.json`` (v5 form)."""
    legacy = processor_dir / "preprocessor_config.json"
    if legacy.is_file():
        return preprocess_config_from_processor(json.loads(legacy.read_text()))
    return preprocess_config_from_processor(json.loads((processor_dir / "processor_config.json").read_text())["image_processor"])


def load_clip_tokenizer(processor_dir: Path, vocab_size: int):
    """``CLIPTokenizer`` from a local dir, its size checked against the text embedding table."""
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(processor_dir), local_files_only=True)
    check_vocab_size(tokenizer, vocab_size, processor_dir)
    return tokenizer


def load_clip_model(model_dir: Path, vision_only: bool = False) -> nn.Module:
    """``CLIPModel`` (or ``CLIPVisionModelWithProjection`` reading the vision half) in float32, eval mode."""
    from transformers import CLIPModel, CLIPVisionModelWithProjection
    from transformers.utils import logging as hf_logging

    cls = CLIPVisionModelWithProjection if vision_only else CLIPModel
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the vision-only load lists every unused text key otherwise
    hf_logging.disable_progress_bar()
    try:
        model = cls.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
    except OSError as exc:  # corrupt or partial folder: keep the fix visible
        raise MissingWeightsError(f"cannot load {cls.__name__} from {model_dir}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model.eval().requires_grad_(False)


def _pooled(output) -> torch.Tensor:
    """transformers 5 returns an output object from ``get_*_features`` (4.x returned the tensor)."""
    return output if torch.is_tensor(output) else output.pooler_output


class CLIPEmbedder(nn.Module):
    """Unit-norm CLIP embeddings of images and prompts.

    Args:
        model: ``CLIPModel`` (or a vision-only ``CLIPVisionModelWithProjection`` with ``tokenizer=None``).
        tokenizer: CLIP tokenizer or None.
        preprocess: image geometry/normalisation read from the processor config.
    """

    def __init__(self, model: nn.Module, tokenizer, preprocess: PreprocessConfig):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.text_cache = TextFeatureCache(self._encode_prompts) if tokenizer is not None else None

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def pixel_values(self, images: torch.Tensor, tensor_path: bool) -> torch.Tensor:
        """``[B,3,H,W]`` in [0,1] -> ``[B,3,S,S]``; tensor path (differentiable) or the PIL reference."""
        fn = clip_preprocess if tensor_path else pil_clip_preprocess
        return fn(images, self.preprocess).to(self._dtype)

    def image_embeds(self, images: torch.Tensor, tensor_path: bool) -> torch.Tensor:
        """``[B,3,H,W]`` -> ``[B,D]`` unit-norm projected image embeddings (float32)."""
        pixels = self.pixel_values(images, tensor_path)
        if hasattr(self.model, "get_image_features"):
            emb = _pooled(self.model.get_image_features(pixel_values=pixels))
        else:  # CLIPVisionModelWithProjection
            emb = self.model(pixel_values=pixels).image_embeds
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def _encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        max_len = self.model.config.text_config.max_position_embeddings
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=max_len,
                                return_tensors="pt")
        device = next(self.model.parameters()).device
        emb = _pooled(self.model.get_text_features(input_ids=tokens.input_ids.to(device),
                                                   attention_mask=tokens.attention_mask.to(device)))
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        """``B`` prompts -> ``[B,D]`` unit-norm text embeddings (float32), cached per unique prompt."""
        return self.text_cache(prompts)

    def _apply(self, fn, recurse=True):
        if self.text_cache is not None:
            self.text_cache.clear()
        return super()._apply(fn, recurse)
