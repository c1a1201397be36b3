"""Reward metadata (no torch import): what ``rtdmd-bench list rewards`` shows and tests verify."""

from __future__ import annotations

from dataclasses import dataclass

from rtdmd_bench.registry import Spec


@dataclass(frozen=True)
class RewardSpec(Spec):
    """Declared metadata of a scorer.

    Attributes:
        version: scorer version shown on leaderboards (e.g. ``hpsv2.1``); bump when scores change.
        units: what the raw number is (``cosine``, ``logit_scale*cosine``, ``z-score``, ``accuracy``...).
        higher_is_better: direction for leaderboards and regression gates.
        differentiable: the forward keeps a graph to the input pixels (verified by tests).
        value_range: hard bounds of the score, or None when unbounded.
        typical_range: range seen in published tables, for sanity warnings.
        needs_prompt / needs_metadata: required inputs.
        weight_files: files under the weights root the scorer loads (relative paths).
        fetch: ``(hub repo id, filename or "" for the whole repo, destination under the root)`` triples.
        fetch_urls: ``(https URL, sha256, destination file under the root)`` for files hosted outside the Hub
            (verified against the sha256 after download); optional files a reward option may select.
        options: ``(name, default)`` of the reward options (``--set reward_options.NAME.KEY=VALUE``); the
            implementation validates and types them, this tuple lets plans check names without torch.
        headline: how leaderboards aggregate per-image scores: ``"mean"``, or ``"macro_over_tags"`` (GenEval's
            official overall = unweighted mean of the per-tag accuracies).
    """

    version: str = "1"
    units: str = ""
    higher_is_better: bool = True
    differentiable: bool = False
    value_range: tuple[float, float] | None = None
    typical_range: tuple[float, float] | None = None
    needs_prompt: bool = True
    needs_metadata: bool = False
    weight_files: tuple[str, ...] = ()
    fetch: tuple[tuple[str, str, str], ...] = ()
    fetch_urls: tuple[tuple[str, str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    headline: str = "mean"

    def summary(self) -> dict[str, str]:
        return {
            "version": self.version,
            "units": self.units,
            "dir": "↑" if self.higher_is_better else "↓",
            "grad": "yes" if self.differentiable else "no",
            "options": ", ".join(f"{k}={v}" for k, v in self.options) or "-",
        }
