"""GenEval2 Soft-TIFA (facebookresearch/GenEval2 ``evaluation.py``): VQA probabilities of each prompt's atoms.

For every ``[question, answer]`` of the prompt's ``vqa_list`` (per-prompt metadata of the ``geneval2`` suite):
the user message is the image + ``"<question> Answer in one word."`` through the VQA model's chat template
(generation prompt on); the atom score is

    s = sum over answer variants v of p(first token of v | image, question)     (next-token softmax)
    variants: "How many ..." -> [a, a.capitalize(), " "+a, " "+a.capitalize(), d, " "+d], d = digit of a
              (one..ten, else "other"); any other question -> ["Yes", "yes", " yes", " Yes"]

and the prompt score is the geometric mean of its atom scores (Soft-TIFA GM, prompt level; the paper's
number) or, with ``--set reward_options.geneval2.aggregation=am``, their arithmetic mean (Soft-TIFA AM, atom
level). Both are always in ``parts``; the per-skill breakdown (atom-level, as the authors' analysis) comes from
``extras["breakdown"]``. The official script prints x100; we report fractions in [0, 1] like the papers.

Speed: the reference runs one ``generate(max_new_tokens=1)`` per question, re-encoding the image each time.
We need only the next-token distribution, so (``batched``, default) each image is encoded ONCE by the vision
tower and all (image, question) pairs of a batch go through one left-padded language-model forward (chunks of
``max_pairs``), reading the logits of the last position only. ``batched=false`` is the per-question reference
path (the processor's own chat-template call per question); a benchmark shows both give the same atom scores.
Model: Qwen3-VL-8B-Instruct (the reference's default) at ``geneval2/Qwen3-VL-8B-Instruct/``. Not differentiable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.checkpoint import CheckpointMismatchError
from rtdmd_bench.weights import require_files

MODEL_DIR = "geneval2/Qwen3-VL-8B-Instruct"
IMAGE_TOKEN = "<|image_pad|>"
NUMBER_DIGITS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10"}


def answer_variants(question: str, answer: str) -> list[str]:
    """The answer strings whose first-token probabilities are summed (GenEval2's lists, duplicates kept)."""
    if question.startswith("How many"):
        digit = NUMBER_DIGITS.get(answer.strip().lower(), "other")
        return [answer, answer.capitalize(), " " + answer, " " + answer.capitalize(), digit, " " + digit]
    return ["Yes", "yes", " yes", " Yes"]


def question_text(question: str) -> str:
    return f"{question} Answer in one word."


def geometric_mean(values: Sequence[float]) -> float:
    """``exp(mean(log v))`` (scipy's ``gmean``); 0 when any value is 0."""
    if min(values) <= 0.0:
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


def vqa_list_of(row: Mapping | None) -> tuple[list[tuple[str, str]] | None, str]:
    """``(pairs, "")`` from a metadata row, or ``(None, reason)`` when it holds no usable GenEval2 VQA list."""
    vqa = row.get("vqa_list") if isinstance(row, Mapping) else None
    if vqa is None:
        return None, "no GenEval2 vqa_list in this prompt's metadata (is the prompt from the geneval2 suite?)"
    if not isinstance(vqa, list) or not vqa or not all(
            isinstance(qa, (list, tuple)) and len(qa) == 2 and all(isinstance(x, str) and x for x in qa) for qa in vqa):
        return None, "malformed vqa_list: expected a non-empty list of [question, answer] strings"
    return [(q, a) for q, a in vqa], ""


@dataclass(frozen=True)
class GenEval2Options:
    """``aggregation``: ``gm`` (prompt-level, the paper's) or ``am``; ``batched``: one vision encoding per image
    and one LM forward per ``max_pairs`` (image, question) pairs (false: one forward per question)."""

    aggregation: Literal["gm", "am"] = "gm"
    batched: bool = True
    max_pairs: int = 64

    def __post_init__(self):
        if self.max_pairs < 1:
            raise ValueError(f"reward_options.geneval2.max_pairs must be >= 1, got {self.max_pairs}")


class GenEval2(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B GenEval2 metadata rows -> Soft-TIFA GM (or AM) ``[B]`` in [0, 1].

    ``parts``: ``soft_tifa_gm``, ``soft_tifa_am``. ``extras``: ``atom_scores`` (per question), ``reason`` (why a
    sample is invalid, else empty), ``breakdown`` ``{"skill": {skill: [atom scores]}}`` for per-skill means.
    """

    spec = REWARDS.spec("geneval2")
    Options = GenEval2Options

    def __init__(self, model, processor, options: GenEval2Options = GenEval2Options()):
        super().__init__()
        self.model = model
        self.processor = processor
        self.options = options
        self.tokenizer = processor.tokenizer
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        if self.image_token_id != model.config.image_token_id:
            raise CheckpointMismatchError(f"the tokenizer's {IMAGE_TOKEN} id {self.image_token_id} differs from the "
                                          f"model's image_token_id {model.config.image_token_id}")
        self._answer_ids: dict[tuple[str, str], list[int]] = {}
        self._templates: dict[str, str] = {}
        self.forwards = 0  # language-model forward calls (the benchmark reads it)

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None, options: GenEval2Options = GenEval2Options()):
        from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

        (directory,) = require_files(root, [MODEL_DIR], cls.spec.name)
        require_files(root, [f"{MODEL_DIR}/config.json"], cls.spec.name)
        model, info = Qwen3VLForConditionalGeneration.from_pretrained(
            str(directory), dtype=dtype or torch.float32, local_files_only=True, output_loading_info=True)
        problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if problems:
            raise CheckpointMismatchError(f"{directory} does not match Qwen3-VL: {problems}")
        processor = AutoProcessor.from_pretrained(str(directory), local_files_only=True)
        if not hasattr(processor, "image_processor") or len(processor.tokenizer) > model.config.text_config.vocab_size:
            raise CheckpointMismatchError(f"{directory}: processor/tokenizer files missing or not Qwen3-VL's "
                                          f"(tokenizer size {len(processor.tokenizer)}); re-run weights fetch")
        return cls(model.eval().requires_grad_(False), processor, options)

    @classmethod
    def identity(cls, root: Path, options: GenEval2Options) -> dict[str, Any]:
        units = "geometric mean of VQA probs" if options.aggregation == "gm" else "arithmetic mean of VQA probs"
        return {"version": cls.spec.version.replace("-gm-", f"-{options.aggregation}-"), "units": units,
                "options": dataclasses.asdict(options)}

    # ------------------------------------------------------------------ atoms
    def answer_ids(self, question: str, answer: str) -> list[int]:
        """First token id of each answer variant (``tokenizer.encode(v)[0]``; empty encodings skipped)."""
        key = (question, answer)
        if key not in self._answer_ids:
            ids = [self.tokenizer.encode(v, add_special_tokens=False) for v in answer_variants(question, answer)]
            self._answer_ids[key] = [i[0] for i in ids if i]
        return self._answer_ids[key]

    def _atom(self, probs: torch.Tensor, question: str, answer: str) -> float:
        return float(sum(float(probs[i]) for i in self.answer_ids(question, answer)))

    def atoms_per_question(self, image, vqa: list[tuple[str, str]]) -> list[float]:
        """Reference path: one processor call and one forward per question (the image re-encoded each time)."""
        param = next(self.model.parameters())
        scores = []
        for question, answer in vqa:
            messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                                     {"type": "text", "text": question_text(question)}]}]
            inputs = self.processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                        return_dict=True, return_tensors="pt").to(param.device)
            logits = self.model(**inputs, logits_to_keep=1).logits[0, -1]
            self.forwards += 1
            scores.append(self._atom(logits.float().softmax(-1), question, answer))
        return scores

    def _chat_text(self, question: str, n_image_tokens: int) -> str:
        if question not in self._templates:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question_text(question)}]}]
            text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            if text.count(IMAGE_TOKEN) != 1:
                raise ValueError(f"the chat template must render one {IMAGE_TOKEN}, got {text.count(IMAGE_TOKEN)}")
            self._templates[question] = text
        return self._templates[question].replace(IMAGE_TOKEN, IMAGE_TOKEN * n_image_tokens)

    def atoms_batched(self, images: list, vqas: list[list[tuple[str, str]]]) -> list[list[float]]:
        """Each image through the vision tower once; all (image, question) pairs in left-padded LM forwards of up
        to ``max_pairs`` rows, logits of the last position only. Returns atom scores per image."""
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        param = next(self.model.parameters())
        pixels = self.processor.image_processor(images=images, return_tensors="pt")
        grid = pixels["image_grid_thw"].to(param.device)
        vision = self.model.model.get_image_features(pixels["pixel_values"].to(param.device, param.dtype), grid)
        merge = self.processor.image_processor.merge_size ** 2
        pairs = [(i, q, a) for i, vqa in enumerate(vqas) for q, a in vqa]
        scores: list[list[float]] = [[] for _ in images]
        for start in range(0, len(pairs), self.options.max_pairs):
            chunk = pairs[start:start + self.options.max_pairs]
            rows = [i for i, _, _ in chunk]
            texts = [self._chat_text(q, int(grid[i].prod()) // merge) for i, q, _ in chunk]
            tok = self.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt").to(param.device)
            encoded = BaseModelOutputWithDeepstackFeatures(
                pooler_output=tuple(vision.pooler_output[i] for i in rows),
                deepstack_features=[tuple(f[i] for i in rows) for f in vision.deepstack_features])
            out = self.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                             image_grid_thw=grid[rows], mm_token_type_ids=(tok["input_ids"] == self.image_token_id).int(),
                             mm_encoder_outputs={"image": encoded}, logits_to_keep=1)
            self.forwards += 1
            probs = out.logits[:, -1].float().softmax(-1)
            for row, (i, q, a) in enumerate(chunk):
                scores[i].append(self._atom(probs[row], q, a))
        return scores

    # ------------------------------------------------------------------ reward
    def score(self, images, prompts, metadata):
        from PIL import Image

        arrays = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        parsed = [vqa_list_of(row) for row in metadata]
        todo = [i for i, (vqa, _) in enumerate(parsed) if vqa is not None]
        pils = [Image.fromarray(arrays[i]) for i in todo]
        vqas = [parsed[i][0] for i in todo]
        if not todo:
            atoms_of = []
        elif self.options.batched:
            atoms_of = self.atoms_batched(pils, vqas)
        else:
            atoms_of = [self.atoms_per_question(p, v) for p, v in zip(pils, vqas)]
        atoms: list[list[float]] = [[] for _ in parsed]
        for i, a in zip(todo, atoms_of):
            atoms[i] = a
        gm = [geometric_mean(a) if a else float("nan") for a in atoms]
        am = [sum(a) / len(a) if a else float("nan") for a in atoms]
        breakdown = []
        for row, a in zip(metadata, atoms):
            skills = row.get("skills") if isinstance(row, Mapping) else None
            groups: dict[str, list[float]] = {}
            if a and isinstance(skills, list) and len(skills) == len(a):
                for skill, s in zip(skills, a):
                    groups.setdefault(str(skill), []).append(s)
            breakdown.append({"skill": groups} if groups else {})
        device = images.device
        chosen = gm if self.options.aggregation == "gm" else am
        return RewardOutput(
            scores=torch.tensor(chosen, dtype=torch.float32, device=device),
            valid=torch.tensor([bool(a) for a in atoms], device=device),
            parts={"soft_tifa_gm": torch.tensor(gm, dtype=torch.float32, device=device),
                   "soft_tifa_am": torch.tensor(am, dtype=torch.float32, device=device)},
            extras={"atom_scores": atoms, "reason": [r for _, r in parsed], "breakdown": breakdown})
