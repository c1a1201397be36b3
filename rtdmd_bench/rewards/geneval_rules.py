"""GenEval's rule engine and summary, pure Python (no torch, no numpy): the official ``evaluate_images.py`` /
``summary_scores.py`` rules of djghosh13/geneval, so the detector backend can change without touching them.

Per image (``evaluate_image``):
  1. ``select_detections``: per class keep score > 0.3 (> 0.9 for tag ``counting``), best first, at most 16
     (no extra NMS: the official NMS threshold is 1.0).
  2. each ``include`` clause in order: the top-``count`` detections of ``class``; fewer -> wrong. With
     ``color``: at least ``count`` of those crops must be classified as that colour. With
     ``position = [rel, j]`` (and still matched): every found object must stand in relation ``rel`` to every
     object of include group ``j``, which must itself have matched. The group is recorded (None if unmatched).
  3. each ``exclude`` clause: ``count`` or more detections of ``class`` -> wrong ("exactly N" for counting).
  ``strict`` (RTDMD's extra flag) additionally needs exactly ``count`` detections per included class, all
  of the required colour, and ignores exclude clauses.

``relative_position(A, B)``: centres c and sizes d of the boxes, ``off = cA - cB``,
``rev = max(|off| - 0.1 (dA + dB), 0) * sign(off)``; no relation when ``|rev| < 1e-3`` on both axes, else
``(dx, dy) = rev / |off|`` and ``dx < -0.5`` left of, ``dx > 0.5`` right of, ``dy < -0.5`` above,
``dy > 0.5`` below (image y grows downwards).

Summary (``geneval_summary``): overall = unweighted mean of the per-tag accuracies (the official number),
plus image-level (micro) and prompt-level (>= 1 correct image) accuracy, each labelled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

THRESHOLD = 0.3
COUNTING_THRESHOLD = 0.9
MAX_OBJECTS = 16
POSITION_THRESHOLD = 0.1
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
RELATIONS = ("left of", "right of", "above", "below")


@dataclass(frozen=True)
class Detection:
    """One detected instance: ``box = (x1, y1, x2, y2)`` in pixels, confidence ``score``, optional ``mask``
    (whatever the colour classifier accepts, e.g. a bool array ``[H, W]``)."""

    box: tuple[float, float, float, float]
    score: float
    mask: Any = None


@dataclass(frozen=True)
class Verdict:
    """Per-image result: ``correct`` (official rule), ``strict`` (exact counts), ``tag``, ``reason`` ("" if correct)."""

    correct: bool
    strict: bool
    tag: str
    reason: str


ColourClassifier = Callable[[str, Sequence[Detection]], Sequence[str]]


def select_detections(raw: Mapping[str, Sequence[Detection]], tag: str) -> dict[str, list[Detection]]:
    """Threshold, sort by score (descending) and keep at most ``MAX_OBJECTS`` per class; empty classes dropped."""
    threshold = COUNTING_THRESHOLD if tag == "counting" else THRESHOLD
    kept = {}
    for name, dets in raw.items():
        good = sorted((d for d in dets if d.score > threshold), key=lambda d: -d.score)[:MAX_OBJECTS]
        if good:
            kept[name] = good
    return kept


def relative_position(a: Detection, b: Detection) -> set[str]:
    """Relations of A with respect to B (subset of ``RELATIONS``), with the 0.1 (dA + dB) dead zone."""
    centre = [((a.box[i] + a.box[i + 2]) / 2, (b.box[i] + b.box[i + 2]) / 2) for i in (0, 1)]
    size = [(abs(a.box[i + 2] - a.box[i]), abs(b.box[i + 2] - b.box[i])) for i in (0, 1)]
    off = [ca - cb for ca, cb in centre]
    rev = [max(abs(o) - POSITION_THRESHOLD * (da + db), 0.0) * math.copysign(1.0, o) if o else 0.0
           for o, (da, db) in zip(off, size)]
    if all(abs(r) < 1e-3 for r in rev):
        return set()
    norm = math.hypot(*off)
    dx, dy = rev[0] / norm, rev[1] / norm
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def _check_position(name, found, rel, targets) -> str:
    """'' when every found object is ``rel`` of every target object, else the reason."""
    if targets is None:
        return f"no target for {name} to be {rel}"
    for obj in found:
        for target in targets:
            true_rels = relative_position(obj, target)
            if rel not in true_rels:
                return f"expected {name} {rel} target, found {' and '.join(sorted(true_rels)) or 'no relation to'} target"
    return ""


def evaluate_image(detections: Mapping[str, Sequence[Detection]], metadata: Mapping,
                   classify_colours: ColourClassifier | None = None) -> Verdict:
    """Apply the official rules to already-selected detections (``select_detections``) of one image.

    Args:
        detections: class name -> detections, best first.
        metadata: a GenEval metadata row (``tag``, ``include``, optional ``exclude``).
        classify_colours: ``(class name, detections) -> colour per detection``; needed only for colour clauses.
    """
    tag = metadata.get("tag", "")
    reasons: list[str] = []
    strict = True
    groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        name, count = req["class"], int(req["count"])
        all_found = list(detections.get(name, []))
        found = all_found[:count]
        strict &= len(all_found) == count
        reason = ""
        if len(found) < count:
            reason = f"expected {name}>={count}, found {len(found)}"
        else:
            if "color" in req:
                if classify_colours is None:
                    raise ValueError("a colour clause needs a colour classifier")
                colours = list(classify_colours(name, found))
                hits = colours.count(req["color"])
                strict &= hits == len(found)
                if hits < count:
                    seen = ", ".join(f"{colours.count(c)} {c}" for c in COLORS if c in colours)
                    reason = f"expected {req['color']} {name}>={count}, found {hits} {req['color']}; and {seen}"
            if "position" in req and not reason:
                rel, target = req["position"]
                reason = _check_position(name, found, rel, groups[target] if target < len(groups) else None)
        if reason:
            reasons.append(reason)
        groups.append(None if reason else found)
    correct = not reasons
    strict = strict and correct  # position and colour failures also fail strict
    for req in metadata.get("exclude", []):
        n = len(detections.get(req["class"], []))
        if n >= int(req["count"]):
            correct = False
            reasons.append(f"expected {req['class']}<{req['count']}, found {n}")
    return Verdict(correct=correct, strict=strict, tag=tag, reason="\n".join(reasons))


SUMMARY_LABELS = {
    "overall": "GenEval overall (official): unweighted mean of the per-tag accuracies",
    "image_accuracy": "fraction of correct images over all tags (micro)",
    "prompt_accuracy": "fraction of prompts with at least one correct image",
    "strict_image_accuracy": "fraction of images with exact counts and all colours right (RTDMD strict)",
}


def geneval_summary(records: Sequence[Mapping]) -> dict:
    """Aggregate per-image records into the GenEval numbers.

    Args:
        records: one mapping per image with ``tag``, ``correct`` (bool/0/1), optional ``strict`` and a prompt
            key (``prompt_id``, else ``prompt``) for the prompt-level accuracy.

    Returns:
        ``{"overall", "per_tag": {tag: acc}, "image_accuracy", "prompt_accuracy", "strict_image_accuracy",
        "n_images", "n_prompts", "per_tag_n", "missing_tags", "labels"}``. ``overall`` averages the tags present;
        ``missing_tags`` lists official tags with no images (then ``overall`` is not the official number).
    """
    if not records:
        raise ValueError("geneval_summary needs at least one record")
    by_tag: dict[str, list[float]] = {}
    by_prompt: dict[Any, bool] = {}
    for r in records:
        by_tag.setdefault(r["tag"], []).append(float(bool(r["correct"])))
        key = r.get("prompt_id", r.get("prompt"))
        by_prompt[key] = by_prompt.get(key, False) or bool(r["correct"])
    per_tag = {t: sum(v) / len(v) for t, v in by_tag.items()}
    return {
        "overall": sum(per_tag.values()) / len(per_tag),
        "per_tag": per_tag,
        "image_accuracy": sum(float(bool(r["correct"])) for r in records) / len(records),
        "prompt_accuracy": sum(by_prompt.values()) / len(by_prompt),
        "strict_image_accuracy": sum(float(bool(r.get("strict", False))) for r in records) / len(records),
        "n_images": len(records),
        "n_prompts": len(by_prompt),
        "per_tag_n": {t: len(v) for t, v in by_tag.items()},
        "missing_tags": [t for t in TAGS if t not in by_tag],
        "labels": dict(SUMMARY_LABELS),
    }
