"""OCR text-rendering accuracy (Flow-GRPO / RTDMD ``ocr``) on PP-OCR models run by RapidOCR + onnxruntime.

Per image (the reference's formula, Harahan/RTDMD ``ocr_scorer.py``):

    target     = the text between the first pair of double quotes of the prompt
    recognised = concatenation of the recognised lines (top-to-bottom, left-to-right) with confidence > 0
    t, r       = target and recognised with spaces removed, lower-cased
    d          = 0 if t is a substring of r, else min(Levenshtein(r, t), len(t))
    reward     = 1 - d / len(t)                                   in [0, 1]

A prompt without a quoted target (fewer than two ``"``, or only spaces between them) is an invalid sample
with its reason; it is counted and excluded, never scored 0.

Models (option ``model``): ``ppocrv6-small`` (default) is the PP-OCRv6 small detector + recogniser that ships
inside the ``rapidocr`` wheel, so OCR works offline with no download; ``ppocrv4-en`` is the PaddleOCR 2.9
``lang="en"`` pair the reference runs (``en_PP-OCRv3_det`` + ``en_PP-OCRv4_rec``) with PaddleOCR's detection
settings, fetched by ``rtdmd-bench weights fetch ocr`` into ``<root>/ocr/ppocrv4-en/``. Both run without the
angle classifier (the reference's ``use_angle_cls=False``). Option ``text_score`` is the recogniser's drop
score (PaddleOCR's ``drop_score`` default 0.5: lines below it are discarded before the reference's ``> 0``
filter, which therefore never removes anything in the reference either). Images reach the engine as the
exact 8-bit pixels of the saved PNG in BGR order (what PaddleOCR/RapidOCR expect from an array; the reference
hands them RGB arrays, i.e. swapped channels -- a quirk we do not copy). Not differentiable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput


def quoted_target(prompt: str) -> str | None:
    """The text between the first pair of double quotes (``prompt.split('"')[1]``), or None without a pair."""
    parts = prompt.split('"')
    return parts[1] if len(parts) >= 3 else None


def normalise(text: str) -> str:
    """Spaces removed, lower-cased (applied to both the target and the recognised text)."""
    return text.replace(" ", "").lower()


def ocr_distance(recognised: str, target: str) -> int:
    """``0`` if normalised ``target`` is in normalised ``recognised``, else ``min(Levenshtein, len(target))``."""
    from Levenshtein import distance

    t, r = normalise(target), normalise(recognised)
    return 0 if t in r else min(distance(r, t), len(t))


def ocr_reward(recognised: str, target: str) -> float:
    """``1 - d / len(t)`` with ``d = ocr_distance`` and ``t`` the normalised target (must be non-empty)."""
    t = normalise(target)
    if not t:
        raise ValueError("the OCR target is empty after removing spaces")
    return 1.0 - ocr_distance(recognised, target) / len(t)


@dataclass(frozen=True)
class OCRModel:
    """One selectable detector + recogniser pair.

    Attributes:
        det / rec: ONNX file names.
        shipped: True when the files ship inside the rapidocr wheel (``rapidocr/models``); else they live in
            ``<weights root>/ocr/<preset>/`` (``spec.fetch_urls``).
        det_params: RapidOCR ``Det.*`` settings (detection thresholds, input size limit).
    """

    det: str
    rec: str
    shipped: bool
    det_params: tuple[tuple[str, Any], ...] = ()


# PaddleOCR 2.9 (tools/infer/utility.py) detection defaults: DB thresholds, unclip, max side 960.
_PADDLE_DET = (("limit_side_len", 960), ("limit_type", "max"), ("thresh", 0.3), ("box_thresh", 0.6),
               ("unclip_ratio", 1.5), ("use_dilation", False), ("score_mode", "fast"))
MODELS: dict[str, OCRModel] = {
    "ppocrv6-small": OCRModel("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx", shipped=True),
    "ppocrv4-en": OCRModel("en_PP-OCRv3_det_mobile.onnx", "en_PP-OCRv4_rec_mobile.onnx", shipped=False,
                           det_params=_PADDLE_DET),
}


@dataclass(frozen=True)
class OCROptions:
    """``model``: a key of ``MODELS``; ``text_score``: drop score of recognised lines (PaddleOCR: 0.5)."""

    model: str = "ppocrv6-small"
    text_score: float = 0.5

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"reward_options.ocr.model: unknown OCR model {self.model!r}; choose one of {sorted(MODELS)}")
        if not 0.0 <= self.text_score < 1.0:
            raise ValueError(f"reward_options.ocr.text_score must be in [0, 1), got {self.text_score}")


def model_files(root: Path, options: OCROptions) -> list[Path]:
    """The detector and recogniser files of ``options.model`` (shipped or under the root), checked to exist."""
    from rtdmd_bench.weights import require_files

    model = MODELS[options.model]
    if model.shipped:
        import rapidocr

        base = Path(rapidocr.__file__).parent / "models"
        files = [base / model.det, base / model.rec]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"the rapidocr package lacks its shipped model files {missing}; reinstall "
                                    f"the pinned rapidocr wheel (pip install --force-reinstall rapidocr)")
        return files
    layout = f"(model {options.model!r}: the PaddleOCR 2.9 English det/rec pair, ONNX)\n"
    return require_files(root, [f"ocr/{options.model}/{model.det}", f"ocr/{options.model}/{model.rec}"], "ocr",
                         layout=layout)


def engine_params(files: list[Path], options: OCROptions) -> dict[str, Any]:
    """RapidOCR ``params``: explicit model files (nothing is resolved or downloaded), no angle classifier."""
    det, rec = files
    params: dict[str, Any] = {"Global.use_cls": False, "Global.text_score": float(options.text_score),
                              "Global.log_level": "error", "Det.model_path": str(det), "Rec.model_path": str(rec)}
    params.update({f"Det.{k}": v for k, v in MODELS[options.model].det_params})
    return params


class OCR(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B prompts with a quoted text -> OCR accuracy ``[B]`` in [0, 1].

    ``parts["edit_distance"]``: the capped distance ``d``. ``extras``: ``target``, ``recognised`` (normalised
    recognised text) and ``reason`` (why a sample is invalid; empty when valid).
    """

    spec = REWARDS.spec("ocr")
    Options = OCROptions

    def __init__(self, engine, options: OCROptions, files: list[Path]):
        super().__init__()
        self.engine = engine
        self.options = options
        self.files = files

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None, options: OCROptions = OCROptions()) -> OCR:
        from rapidocr import RapidOCR

        files = model_files(root, options)
        return cls(RapidOCR(params=engine_params(files, options)), options, files)

    @classmethod
    def identity(cls, root: Path, options: OCROptions) -> dict[str, Any]:
        """Version ``<spec version>/<model>``, the options, and ``{name, bytes, sha256}`` of both model files."""
        from rtdmd_bench.io import sha256_file

        files = model_files(root, options)
        return {"version": f"{cls.spec.version}/{options.model}", "units": cls.spec.units,
                "options": dataclasses.asdict(options),
                "files": [{"name": f.name, "bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in files]}

    def read(self, image_bgr) -> str:
        """Recognised lines of one uint8 BGR ``[H,W,3]`` array, joined in reading order (confidence > 0)."""
        out = self.engine(image_bgr)
        texts, scores = out.txts or (), out.scores or ()
        return "".join(t for t, s in zip(texts, scores) if s > 0)

    def score(self, images, prompts, metadata):
        arrays = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        scores, dists, targets, read, reasons = [], [], [], [], []
        for arr, prompt in zip(arrays, prompts):
            target = quoted_target(prompt)
            reason, text = "", ""
            if target is None or not normalise(target):
                reason = "no quoted text in the prompt" if target is None else "the quoted text is empty"
            else:
                try:
                    text = self.read(arr[..., ::-1].copy())  # RGB -> BGR, contiguous
                except Exception as exc:  # one unreadable image must not end a long run; it is reported
                    reason = f"OCR failed: {type(exc).__name__}: {exc}"
            ok = not reason
            scores.append(ocr_reward(text, target) if ok else float("nan"))
            dists.append(float(ocr_distance(text, target)) if ok else float("nan"))
            targets.append(target)
            read.append(normalise(text))
            reasons.append(reason)
        device = images.device
        scores_t = torch.tensor(scores, dtype=torch.float32, device=device)
        return RewardOutput(scores=scores_t, valid=torch.tensor([not r for r in reasons], device=device),
                            parts={"edit_distance": torch.tensor(dists, dtype=torch.float32, device=device)},
                            extras={"target": targets, "recognised": read, "reason": reasons})
