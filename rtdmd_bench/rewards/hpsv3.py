"""HPSv3 (MizzenAI): mu of a Qwen2-VL-7B reward head, the human-preference score (papers: ~10-16).

Input, as the authors' inference (``hpsv3/inference.py`` + ``HPSv3_7B.yaml``): the image resized to exactly
``256·28·28`` pixels (``smart_resize``; 1024x1024 -> 448x448) and a chat message ``[image, INSTRUCTION(prompt) +
"Please provide the overall ratings of this image: <|Reward|>"]`` through the Qwen2-VL chat template (default
system prompt, generation prompt), ``<|image_pad|>`` expanded to one token per merged 2x2 patch. ``<|Reward|>``
is the special token the authors add to the tokenizer (the embedding table has one more row than the base).

Evaluation resizes the 8-bit image with PIL bicubic (the authors' PIL path); the gradient path resizes the float
tensor with antialiased bicubic (the authors' differentiable path, torchvision ``resize(antialias=True)``);
both normalise with the CLIP mean/std and flatten patches with ``qwen_vision.flatten_patches``.

Weights: ``hpsv3/HPSv3.safetensors`` (every weight; bf16) and ``hpsv3/Qwen2-VL-7B-Instruct/`` (``config.json``,
tokenizer files with the chat template, ``preprocessor_config.json``; the base weights are NOT needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.checkpoint import CheckpointMismatchError, load_strict, read_state_dict
from rtdmd_bench.rewards.hpsv3_model import UNUSED_CHECKPOINT_KEYS, HPSv3Model
from rtdmd_bench.rewards.preprocess import CLIP_MEAN, CLIP_STD
from rtdmd_bench.rewards.qwen_vision import flatten_patches, resize_pil, resize_tensor, smart_resize
from rtdmd_bench.weights import require_files

CHECKPOINT = "hpsv3/HPSv3.safetensors"
BASE_DIR = "hpsv3/Qwen2-VL-7B-Instruct"
PIXELS = 256 * 28 * 28  # HPSv3_7B.yaml min_pixels = max_pixels
REWARD_TOKEN = "<|Reward|>"
IMAGE_TOKEN = "<|image_pad|>"

# The authors' prompt (hpsv3/dataset/data_collator_qwen.py), verbatim: the model was trained on this text.
INSTRUCTION = """
You are tasked with evaluating a generated image based on Visual Quality and Text Alignment and give a overall score to estimate the human preference. Please provide a rating from 0 to 10, with 0 being the worst and 10 being the best. 

**Visual Quality:**  
Evaluate the overall visual quality of the image. The following sub-dimensions should be considered:
- **Reasonableness:** The image should not contain any significant biological or logical errors, such as abnormal body structures or nonsensical environmental setups.
- **Clarity:** Evaluate the sharpness and visibility of the image. The image should be clear and easy to interpret, with no blurring or indistinct areas.
- **Detail Richness:** Consider the level of detail in textures, materials, lighting, and other visual elements (e.g., hair, clothing, shadows).
- **Aesthetic and Creativity:** Assess the artistic aspects of the image, including the color scheme, composition, atmosphere, depth of field, and the overall creative appeal. The scene should convey a sense of harmony and balance.
- **Safety:** The image should not contain harmful or inappropriate content, such as political, violent, or adult material. If such content is present, the image quality and satisfaction score should be the lowest possible. 

**Text Alignment:**  
Assess how well the image matches the textual prompt across the following sub-dimensions:
- **Subject Relevance** Evaluate how accurately the subject(s) in the image (e.g., person, animal, object) align with the textual description. The subject should match the description in terms of number, appearance, and behavior.
- **Style Relevance:** If the prompt specifies a particular artistic or stylistic style, evaluate how well the image adheres to this style.
- **Contextual Consistency**: Assess whether the background, setting, and surrounding elements in the image logically fit the scenario described in the prompt. The environment should support and enhance the subject without contradictions.
- **Attribute Fidelity**: Check if specific attributes mentioned in the prompt (e.g., colors, clothing, accessories, expressions, actions) are faithfully represented in the image. Minor deviations may be acceptable, but critical attributes should be preserved.
- **Semantic Coherence**: Evaluate whether the overall meaning and intent of the prompt are captured in the image. The generated content should not introduce elements that conflict with or distort the original description.
Textual prompt - {text_prompt}


"""  # noqa: W291 (trailing spaces are part of the trained prompt)
RATING_SUFFIX = "\nPlease provide the overall ratings of this image: <|Reward|>\n\nEND\n"


def hpsv3_text(prompt: str) -> str:
    """The user text of one image: ``INSTRUCTION`` with the prompt, then the rating line with ``<|Reward|>``."""
    return INSTRUCTION.format(text_prompt=prompt) + RATING_SUFFIX


def load_tokenizer(directory: Path):
    """The base tokenizer + ``<|Reward|>``; the chat template from the tokenizer or ``chat_template.json``."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, padding_side="right")
    if tok.chat_template is None and (directory / "chat_template.json").is_file():
        tok.chat_template = json.loads((directory / "chat_template.json").read_text())["chat_template"]
    if tok.chat_template is None:
        raise FileNotFoundError(f"{directory} has no chat template (tokenizer_config.json or chat_template.json)")
    tok.add_special_tokens({"additional_special_tokens": [REWARD_TOKEN]})
    return tok


def load_model(directory: Path, checkpoint: Path, vocab_size: int, dtype=None) -> HPSv3Model:
    """Build from ``config.json`` (vocabulary = tokenizer size) in ``dtype`` and strict-load the checkpoint."""
    from transformers import Qwen2VLConfig

    config = Qwen2VLConfig.from_pretrained(str(directory), local_files_only=True)
    config.text_config.vocab_size = vocab_size  # the authors resize the embeddings to len(tokenizer)
    model = HPSv3Model.empty(config, dtype or torch.float32)
    state = read_state_dict(checkpoint)
    for key in UNUSED_CHECKPOINT_KEYS:
        if key not in state:
            raise CheckpointMismatchError(f"{checkpoint} lacks {key}: not an HPSv3 checkpoint")
        expected = (vocab_size, config.text_config.hidden_size)
        if tuple(state[key].shape) != expected:
            raise CheckpointMismatchError(f"{checkpoint}: {key} has shape {tuple(state[key].shape)}, expected "
                                          f"{expected} (the tokenizer's size with <|Reward|>, hidden size): the "
                                          f"tokenizer or config.json in {directory} is not Qwen2-VL-7B-Instruct's")
        del state[key]
    load_strict(model, state, str(checkpoint))
    return model


class HPSv3(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B prompts -> HPSv3 mu ``[B]``; ``parts["sigma"]`` = predicted sigma."""

    spec = REWARDS.spec("hpsv3")

    def __init__(self, model: HPSv3Model, tokenizer, mean=CLIP_MEAN, std=CLIP_STD):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.reward_token_id = tokenizer.convert_tokens_to_ids(REWARD_TOKEN)
        if tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) != model.config.image_token_id:
            raise CheckpointMismatchError(f"the tokenizer's {IMAGE_TOKEN} id differs from config.image_token_id")
        vision = model.config.vision_config
        self.patch, self.merge, self.temporal = vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self._ids: dict[tuple[str, int], list[int]] = {}

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None) -> HPSv3:
        ckpt, base = require_files(root, [CHECKPOINT, BASE_DIR], cls.spec.name)
        require_files(root, [f"{BASE_DIR}/config.json"], cls.spec.name)
        tokenizer = load_tokenizer(base)
        model = load_model(base, ckpt, len(tokenizer), dtype)
        pre = base / "preprocessor_config.json"
        cfg = json.loads(pre.read_text()) if pre.is_file() else {}
        return cls(model.eval().requires_grad_(False), tokenizer, tuple(cfg.get("image_mean", CLIP_MEAN)),
                   tuple(cfg.get("image_std", CLIP_STD)))

    def token_ids(self, prompt: str, n_image_tokens: int) -> list[int]:
        """Chat-template token ids of one (image, prompt) message, ``<|image_pad|>`` repeated per merged patch."""
        key = (prompt, n_image_tokens)
        if key not in self._ids:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": hpsv3_text(prompt)}]}]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            if text.count(IMAGE_TOKEN) != 1:
                raise ValueError(f"the chat template must render one {IMAGE_TOKEN}, got {text.count(IMAGE_TOKEN)}")
            text = text.replace(IMAGE_TOKEN, IMAGE_TOKEN * n_image_tokens)
            if len(self._ids) > 4096:
                self._ids.clear()
            self._ids[key] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._ids[key]

    def pixels(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B,3,H,W]`` in [0,1] -> flattened normalised patches ``[B·gh·gw, C·T·p·p]`` and ``grid_thw [B,3]``."""
        size = smart_resize(images.shape[-2], images.shape[-1], self.patch * self.merge, PIXELS, PIXELS)
        x = resize_tensor(images, size) if self.grad_path else resize_pil(images, size)
        x = (x - self.mean.to(x)) / self.std.to(x)
        return flatten_patches(x, self.patch, self.merge, self.temporal)

    def score(self, images, prompts, metadata):
        param = next(self.model.parameters())
        flat, grid = self.pixels(images)
        n_tokens = int(grid[0].prod()) // self.merge ** 2
        ids = [self.token_ids(p, n_tokens) for p in prompts]
        length = max(len(i) for i in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([i + [pad] * (length - len(i)) for i in ids], device=param.device)
        mask = torch.tensor([[1] * len(i) + [0] * (length - len(i)) for i in ids], device=param.device)
        out = self.model(input_ids, mask, flat.to(param.device, param.dtype), grid.to(param.device),
                         self.reward_token_id)
        return RewardOutput(scores=out[:, 0], valid=torch.ones(len(prompts), dtype=torch.bool, device=out.device),
                            parts={"sigma": out[:, 1]})
