"""GenEval scorer without mmdet: HF Mask2Former detections + open_clip colour classifier + the official rules.

Per image (``GenEval.score``): the uint8 RGB image goes through the detector, whose raw query outputs are
post-processed exactly like mmdet's ``MaskFormerFusionHead.instance_postprocess`` (top-100 query x class
scores, score = class prob x mean mask prob, boxes from the binary masks); ``select_detections`` and
``evaluate_image`` (``geneval_rules``, unchanged) then give the official 0/1 correctness, the RTDMD strict
flag, the tag and the reason. Colour clauses classify crops (image composited with the instance mask over
``#999`` grey, cropped to the box) zero-shot over the 10 GenEval colours with the 3 templates averaged.

Known deviation (REWARDS.md §8.2): the HF checkpoint ``facebook/mask2former-swin-small-coco-instance`` is the
detectron2 Mask2Former Swin-S COCO model, not mmdet's ``…_20220504-743b7d99`` one. Detectron2's model
takes **RGB** (ImageNet mean/std in RGB order), so no BGR swap here -- the BGR trap is an mmdet one.
Weights under the root: ``geneval/mask2former-swin-small-coco-instance/`` (HF model + processor) and
``geneval/clip-vit-large-patch14-openai/`` (``open_clip_model.safetensors`` + optional
``open_clip_config.json``; the architecture is ``ViT-L-14-quickgelu`` and QuickGELU is forced for these
OpenAI-trained weights, the open_clip >= 3 parity trap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardInputError, RewardOutput
from rtdmd_bench.rewards.checkpoint import check_vocab_size, load_strict, read_state_dict
from rtdmd_bench.rewards.geneval_rules import COLORS, Detection, evaluate_image, select_detections
from rtdmd_bench.rewards.open_clip_loading import (
    build_open_clip,
    preprocess_config,
    read_open_clip_config,
    unit_image_features,
    unit_text_features,
)
from rtdmd_bench.rewards.preprocess import PreprocessConfig, pil_clip_preprocess
from rtdmd_bench.weights import require_files

DETECTOR_DIR = "geneval/mask2former-swin-small-coco-instance"
CLIP_DIR = "geneval/clip-vit-large-patch14-openai"
CLIP_CHECKPOINT = f"{CLIP_DIR}/open_clip_model.safetensors"
CLIP_ARCHITECTURE = "ViT-L-14-quickgelu"
MAX_PER_IMAGE = 100  # mmdet Mask2Former test_cfg.max_per_image
GREY = 153  # "#999" background of the colour crops
TEMPLATES = ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object")

# GenEval's object_names.txt: the 80 COCO classes in contiguous COCO order, with three renamed.
GENEVAL_OBJECTS = tuple((
    "person,bicycle,car,motorcycle,airplane,bus,train,truck,boat,traffic light,fire hydrant,stop sign,"
    "parking meter,bench,bird,cat,dog,horse,sheep,cow,elephant,bear,zebra,giraffe,backpack,umbrella,"
    "handbag,tie,suitcase,frisbee,skis,snowboard,sports ball,kite,baseball bat,baseball glove,skateboard,"
    "surfboard,tennis racket,bottle,wine glass,cup,fork,knife,spoon,bowl,banana,apple,sandwich,orange,"
    "broccoli,carrot,hot dog,pizza,donut,cake,chair,couch,potted plant,bed,dining table,toilet,tv,laptop,"
    "computer mouse,tv remote,computer keyboard,cell phone,microwave,oven,toaster,sink,refrigerator,book,"
    "clock,vase,scissors,teddy bear,hair drier,toothbrush"
).split(","))
# Other spellings of the same classes in detector configs (detectron2 / HF id2label, mmdet).
ALIASES = {"mouse": "computer mouse", "remote": "tv remote", "keyboard": "computer keyboard",
           "tvmonitor": "tv", "hair dryer": "hair drier", "motorbike": "motorcycle", "aeroplane": "airplane",
           "sofa": "couch", "pottedplant": "potted plant", "diningtable": "dining table"}


def geneval_class_names(id2label: Mapping) -> list[str]:
    """GenEval name per detector label id (``config.id2label``), in id order. Raises on unknown/missing names."""
    ids = sorted(int(i) for i in id2label)
    if ids != list(range(len(GENEVAL_OBJECTS))):
        raise ValueError(f"detector must have {len(GENEVAL_OBJECTS)} COCO labels 0..79, got ids {ids[:3]}..{ids[-3:]}")
    names = []
    for i in ids:
        raw = str(id2label[i] if i in id2label else id2label[str(i)]).strip().lower()
        name = ALIASES.get(raw, raw)
        if name not in GENEVAL_OBJECTS:
            raise ValueError(f"detector label {i} {raw!r} is not one of GenEval's 80 COCO classes")
        names.append(name)
    if sorted(names) != sorted(GENEVAL_OBJECTS):
        raise ValueError("detector labels do not cover GenEval's 80 COCO classes exactly once each")
    return names


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """mmdet ``mask2bbox``: bool ``[N,H,W]`` -> ``[N,4]`` float ``x1,y1,x2+1,y2+1`` (zeros for empty masks)."""
    boxes = torch.zeros(masks.shape[0], 4)
    xs, ys = masks.any(1), masks.any(2)
    for i in range(masks.shape[0]):
        x, y = torch.nonzero(xs[i])[:, 0], torch.nonzero(ys[i])[:, 0]
        if len(x) and len(y):
            boxes[i] = torch.tensor([x[0], y[0], x[-1] + 1, y[-1] + 1], dtype=torch.float32)
    return boxes


class Mask2FormerDetector(nn.Module):
    """uint8 RGB arrays ``[H,W,3]`` -> per image ``{geneval class: [Detection]}`` (masks bool ``[H,W]`` numpy)."""

    def __init__(self, model: nn.Module, processor, class_names: Sequence[str]):
        super().__init__()
        self.model = model
        self.processor = processor
        self.class_names = list(class_names)

    @classmethod
    def from_dir(cls, directory: Path) -> Mask2FormerDetector:
        from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

        model = Mask2FormerForUniversalSegmentation.from_pretrained(directory, local_files_only=True).eval()
        processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
        return cls(model, processor, geneval_class_names(model.config.id2label))

    def forward(self, arrays: Sequence[np.ndarray]) -> list[dict[str, list[Detection]]]:
        param = next(self.model.parameters())
        inputs = self.processor(images=list(arrays), return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(param.device, param.dtype)
        out = self.model(pixel_values=pixel_values, pixel_mask=inputs["pixel_mask"].to(param.device))
        # mmdet: mask logits -> padded input size, crop the valid (unpadded) region, -> original size.
        logits = F.interpolate(out.masks_queries_logits.float(), size=pixel_values.shape[-2:], mode="bilinear",
                               align_corners=False)
        results = []
        for i, arr in enumerate(arrays):
            valid = inputs["pixel_mask"][i].bool()
            h_in, w_in = int(valid.any(1).sum()), int(valid.any(0).sum())
            mask_logits = F.interpolate(logits[i:i + 1, :, :h_in, :w_in], size=arr.shape[:2], mode="bilinear",
                                        align_corners=False)[0]
            results.append(self._instances(out.class_queries_logits[i].float(), mask_logits))
        return results

    def _instances(self, class_logits: torch.Tensor, mask_logits: torch.Tensor) -> dict[str, list[Detection]]:
        """mmdet ``instance_postprocess``: class logits ``[Q,C+1]``, mask logits ``[Q,H,W]`` -> detections."""
        n_classes = class_logits.shape[1] - 1  # the last class is "no object"
        scores = class_logits.softmax(-1)[:, :-1].flatten()
        top_scores, top = scores.topk(min(MAX_PER_IMAGE, scores.numel()), sorted=False)
        labels, queries = top % n_classes, torch.div(top, n_classes, rounding_mode="floor")
        binary = mask_logits[queries] > 0
        mask_scores = (mask_logits[queries].sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
        det_scores = (top_scores * mask_scores).cpu()
        boxes, binary = masks_to_boxes(binary.cpu()), binary.cpu().numpy()
        per_class: dict[str, list[Detection]] = {}
        for k in range(len(top)):
            name = self.class_names[int(labels[k])]
            det = Detection(box=tuple(float(v) for v in boxes[k]), score=float(det_scores[k]), mask=binary[k])
            per_class.setdefault(name, []).append(det)
        return per_class


def composite_crop(image: np.ndarray, det: Detection) -> np.ndarray:
    """GenEval's crop: uint8 RGB ``[H,W,3]`` composited with ``det.mask`` over #999 grey, cropped to the box
    (PIL ``crop`` rounding). Returns uint8 ``[h,w,3]``; pixels outside the image are black, as PIL pads."""
    from PIL import Image

    out = image
    if det.mask is not None:
        out = np.where(np.asarray(det.mask, dtype=bool)[..., None], image, np.uint8(GREY)).astype(np.uint8)
    return np.array(Image.fromarray(out).crop(tuple(det.box[:4])))  # a writable copy (torch.from_numpy)


class ColourClassifier(nn.Module):
    """Zero-shot colour of masked crops with open_clip (``clip_benchmark`` zero-shot classifier semantics)."""

    def __init__(self, model: nn.Module, tokenizer, preprocess: PreprocessConfig):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self._classifiers: dict[str, torch.Tensor] = {}  # per object name: [D, 10]

    @classmethod
    def from_dir(cls, root: Path) -> ColourClassifier:
        model_cfg, pre_cfg = read_open_clip_config(Path(root) / CLIP_DIR, CLIP_ARCHITECTURE)
        model_cfg = {**model_cfg, "quick_gelu": True}  # OpenAI weights were trained with QuickGELU
        model = build_open_clip(model_cfg)
        load_strict(model, read_state_dict(Path(root) / CLIP_CHECKPOINT), CLIP_CHECKPOINT)
        from open_clip.tokenizer import SimpleTokenizer

        tokenizer = SimpleTokenizer(context_length=model_cfg["text_cfg"].get("context_length", 77))
        check_vocab_size(tokenizer, model_cfg["text_cfg"].get("vocab_size", 49408), "open_clip's bundled BPE")
        return cls(model.eval(), tokenizer, preprocess_config(model_cfg, pre_cfg, mode="crop"))

    def _apply(self, fn, recurse=True):
        self._classifiers = {}  # recomputed on the new device/dtype
        return super()._apply(fn, recurse)

    def classifier(self, name: str) -> torch.Tensor:
        """``[D, 10]``: per colour, the normalised mean of the normalised template embeddings."""
        if name not in self._classifiers:
            texts = [t.format(c=c, cls=name) for c in COLORS for t in TEMPLATES]
            emb = unit_text_features(self.model, self.tokenizer(texts))
            emb = F.normalize(emb.view(len(COLORS), len(TEMPLATES), -1).mean(1), dim=-1)
            self._classifiers[name] = emb.T
        return self._classifiers[name]

    def forward(self, image: np.ndarray, name: str, dets: Sequence[Detection]) -> list[str]:
        """uint8 RGB ``[H,W,3]``, object name, detections -> predicted colour per detection."""
        crops = [torch.from_numpy(composite_crop(image, d)).permute(2, 0, 1)[None].float() / 255.0 for d in dets]
        feats = unit_image_features(self.model, torch.cat([pil_clip_preprocess(c, self.preprocess) for c in crops]))
        return [COLORS[int(i)] for i in (feats @ self.classifier(name)).argmax(1)]


def check_metadata(row: Mapping, index: int, reward: str = "geneval") -> None:
    """Raise RewardInputError unless ``row`` is a GenEval metadata row (``tag`` and an ``include`` list)."""
    if not isinstance(row, Mapping) or "tag" not in row or not isinstance(row.get("include"), list):
        raise RewardInputError(f"{reward}: metadata[{index}] must be a GenEval row with 'tag' and an 'include' list")


def image_arrays(images: torch.Tensor) -> list[np.ndarray]:
    """``[B,3,H,W]`` in [0,1] -> the exact pixels of the saved PNGs as uint8 RGB ``[H,W,3]`` arrays."""
    return list((images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())


class GenEval(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B GenEval metadata rows -> official correctness ``[B]`` (0/1).

    ``parts``: ``strict`` ``[B]`` (0/1). ``extras``: per-image ``correct``, ``strict``, ``tag``, ``reason``.
    Aggregate with ``geneval_rules.geneval_summary`` (overall = mean of the per-tag accuracies).
    """

    spec = REWARDS.spec("geneval")

    def __init__(self, detector: nn.Module, colours: nn.Module):
        super().__init__()
        self.detector = detector
        self.colours = colours

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None) -> GenEval:
        det_dir, _ = require_files(root, [DETECTOR_DIR, CLIP_CHECKPOINT], cls.spec.name)
        return cls(Mask2FormerDetector.from_dir(det_dir), ColourClassifier.from_dir(root))

    def score(self, images, prompts, metadata):
        for i, row in enumerate(metadata):
            check_metadata(row, i)
        arrays = image_arrays(images)  # forward already quantised: these are the saved PNG's pixels
        detections = self.detector(arrays)
        verdicts = []
        for arr, raw, row in zip(arrays, detections, metadata):
            selected = select_detections(raw, row["tag"])
            verdicts.append(evaluate_image(selected, row, lambda name, dets, a=arr: self.colours(a, name, dets)))
        correct = torch.tensor([float(v.correct) for v in verdicts], device=images.device)
        strict = torch.tensor([float(v.strict) for v in verdicts], device=images.device)
        extras = {"correct": [v.correct for v in verdicts], "strict": [v.strict for v in verdicts],
                  "tag": [v.tag for v in verdicts], "reason": [v.reason for v in verdicts]}
        return RewardOutput(scores=correct, valid=torch.ones_like(correct, dtype=torch.bool),
                            parts={"strict": strict}, extras=extras)
