"""GenEval partial credit: the RTDMD reference's TRAINING reward (its ``geneval_scorer.py::evaluate_reward``, the
``score`` its GRPO advantages use; ALGORITHM.md §4.5). Evaluation keeps the official 0/1 ``geneval``.

Same detector, thresholds and colour classifier as ``geneval`` (``rewards.geneval``); the rules differ. Per image,
each ``include`` clause appends credits to a list and the score is their mean (0 when the list is empty):

* count credit ``1 − |count − n| / count`` with n = ALL kept detections of the class (not the top ``count``: a
  duplicate costs credit, and n > 2·count makes it negative);
* if ``n ≠ count``: one 0 for the clause's colour-or-position requirement (if it has either); the clause fails;
* else, colour: ``1 − |count − hits| / count`` over the n crops; the clause fails unless every crop has the colour;
* then, position (only while the clause still holds): 0 and fail when the target clause failed (or does not exist),
  else every (object, target) pair must stand in the relation; a failed pair appends 0, and then — the reference's
  quirk, ``position_quirk: true`` — a 1.0 is appended whether or not the check failed (a failed position earns
  (count credit + 0 + 1)/3, e.g. 0.75 with its target clause; ``position_quirk: false`` appends the 1.0 only on
  success: 2/3).

``exclude`` clauses are ignored (a fourth cup on "three cups" costs 1/3 of the count credit, not the image).
``exact`` (the reference's ``strict_correct``) is 1 when every clause held. Detections are ordered by score with
ties broken later-first (numpy's ``argsort(...)[::-1]``), which matters only where the 16-per-class cap cuts a tie.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import RewardOutput
from rtdmd_bench.rewards.geneval import (
    CLIP_CHECKPOINT,
    DETECTOR_DIR,
    ColourClassifier,
    GenEval,
    Mask2FormerDetector,
    check_metadata,
    image_arrays,
)
from rtdmd_bench.rewards.geneval_rules import (
    COUNTING_THRESHOLD,
    MAX_OBJECTS,
    THRESHOLD,
    Detection,
    relative_position,
)
from rtdmd_bench.rewards.geneval_rules import ColourClassifier as ClassifyColours
from rtdmd_bench.weights import require_files


def select_detections(raw: Mapping[str, Sequence[Detection]], tag: str) -> dict[str, list[Detection]]:
    """Per class: score above the threshold (0.9 for ``counting``, else 0.3), best first (ties: the later detection
    first), at most 16; classes with none are dropped."""
    threshold = COUNTING_THRESHOLD if tag == "counting" else THRESHOLD
    kept = {}
    for name, dets in raw.items():
        order = sorted(range(len(dets)), key=lambda i: (dets[i].score, i), reverse=True)
        good = [dets[i] for i in order if dets[i].score > threshold][:MAX_OBJECTS]
        if good:
            kept[name] = good
    return kept


@dataclass(frozen=True)
class PartialVerdict:
    """Per-image result: ``score`` (mean credit), ``exact`` (every clause held), ``credits`` (the list), ``reason``."""

    score: float
    exact: bool
    credits: tuple[float, ...]
    reason: str


def partial_credit(detections: Mapping[str, Sequence[Detection]], metadata: Mapping,
                   classify_colours: ClassifyColours | None = None, position_quirk: bool = True) -> PartialVerdict:
    """The reference's partial credit of one image (module docstring) from selected detections.

    Args:
        detections: class name -> kept detections (``select_detections``).
        metadata: a GenEval row (``include``; ``exclude`` is ignored by this reward).
        classify_colours: ``(class name, detections) -> colour per detection``; needed only for colour clauses.
        position_quirk: append 1.0 after a failed position check too (the reference; see module docstring).
    """
    credits: list[float] = []
    reasons: list[str] = []
    groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        name, count = req["class"], int(req["count"])
        found = list(detections.get(name, []))
        credits.append(1 - abs(count - len(found)) / count)
        held = len(found) == count
        if not held:
            reasons.append(f"expected {name}=={count}, found {len(found)}")
            if "color" in req or "position" in req:
                credits.append(0.0)
        else:
            if "color" in req:
                if classify_colours is None:
                    raise ValueError("a colour clause needs a colour classifier")
                hits = list(classify_colours(name, found)).count(req["color"])
                credits.append(1 - abs(count - hits) / count)
                if hits != count:
                    held = False
                    reasons.append(f"expected {count} {req['color']} {name}, found {hits}")
            if "position" in req and held:
                rel, target = req["position"]
                targets = groups[target] if 0 <= target < len(groups) else None
                if targets is None:
                    held = False
                    reasons.append(f"no target for {name} to be {rel}")
                    credits.append(0.0)
                else:
                    wrong = next(((o, t) for o in found for t in targets if rel not in relative_position(o, t)), None)
                    if wrong is not None:
                        held = False
                        reasons.append(f"expected {name} {rel} target, found "
                                       f"{' and '.join(sorted(relative_position(*wrong))) or 'no relation'}")
                        credits.append(0.0)
                    if wrong is None or position_quirk:
                        credits.append(1.0)
        groups.append(found if held else None)
    score = sum(credits) / len(credits) if credits else 0.0
    return PartialVerdict(score=score, exact=all(g is not None for g in groups), credits=tuple(credits),
                          reason="\n".join(reasons))


@dataclass(frozen=True)
class GenEvalPartialOptions:
    """``position_quirk``: the reference's extra 1.0 after a failed position check (true = the reference)."""

    position_quirk: bool = True


class GenEvalPartial(GenEval):
    """Images ``[B,3,H,W]`` in [0,1] + B GenEval metadata rows -> partial credit ``[B]`` (module docstring).

    ``parts``: ``exact`` ``[B]`` (0/1). ``extras``: per-image ``credits``, ``tag``, ``reason``.
    """

    spec = REWARDS.spec("geneval_partial")
    Options = GenEvalPartialOptions

    def __init__(self, detector: nn.Module, colours: nn.Module,
                 options: GenEvalPartialOptions = GenEvalPartialOptions()):
        super().__init__(detector, colours)
        self.options = options

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None,
                     options: GenEvalPartialOptions = GenEvalPartialOptions()) -> GenEvalPartial:
        det_dir, _ = require_files(root, [DETECTOR_DIR, CLIP_CHECKPOINT], cls.spec.name)
        return cls(Mask2FormerDetector.from_dir(det_dir), ColourClassifier.from_dir(root), options)

    @classmethod
    def identity(cls, root: Path, options: GenEvalPartialOptions) -> dict[str, Any]:
        version = cls.spec.version if options.position_quirk else cls.spec.version.replace("-rtdmd-", "-fixed-")
        return {"version": version, "units": cls.spec.units, "options": dataclasses.asdict(options)}

    def score(self, images, prompts, metadata):
        for i, row in enumerate(metadata):
            check_metadata(row, i, self.spec.name)
        arrays = image_arrays(images)
        verdicts = [partial_credit(select_detections(raw, row["tag"]), row,
                                   lambda name, dets, a=arr: self.colours(a, name, dets), self.options.position_quirk)
                    for arr, raw, row in zip(arrays, self.detector(arrays), metadata)]
        scores = torch.tensor([v.score for v in verdicts], device=images.device)
        exact = torch.tensor([float(v.exact) for v in verdicts], device=images.device)
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool), parts={"exact": exact},
                            extras={"credits": [list(v.credits) for v in verdicts],
                                    "tag": [row["tag"] for row in metadata], "reason": [v.reason for v in verdicts]})
