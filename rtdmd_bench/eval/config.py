"""``EvalConfig``: the resolved configuration of one evaluation run (saved as config.yaml and in results.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Fields that define WHICH images a run holds, or how its recorded scores were computed (reward options: a
# cached score is never recomputed, so another OCR model on the same run dir would mix two scorers); a run
# dir whose config differs in any of them is another run.
IDENTITY_FIELDS = ("model", "seed", "lora", "overrides", "weights", "dtype", "samples_per_prompt", "reward_options")


@dataclass(frozen=True)
class ModelOverrides:
    """Sampling settings that replace the model entry's defaults (None = keep the entry's value)."""

    height: int | None = None
    width: int | None = None
    steps: int | None = None
    eta: float | None = None
    guidance: float | None = None

    def as_kwargs(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    Attributes:
        model: model registry name or ``"module:Attr"`` plugin.
        suites: suite names; each is scored with ``rewards`` or, when empty, its manifest's default rewards.
        rewards: rewards applied to every suite (overrides the suites' defaults).
        benchmark: a preset routing of suites to rewards (e.g. ``rtdmd-paper``); replaces suites/rewards.
        limit: first N prompts of each suite (None = all); recorded in results.
        samples_per_prompt: images per prompt (None = the suite's images_per_prompt).
        seed: run seed, one input of every image's seed.
        batch_size: generation and scoring batch size (never changes any image or score).
        device: ``auto`` (cuda if available), ``cpu``, ``cuda``, ``cuda:1``...
        dtype: None = the model's dtype on GPU, float32 on CPU.
        weights: weights root, ``tiny``, or None for ``$RTDMD_BENCH_WEIGHTS``.
        lora: extra LoRA files merged after the model entry's own stack.
        overrides: sampling overrides.
        bootstrap_resamples: resamples of the prompt bootstrap CI.
        reward_options: per reward, its options (``--set reward_options.ocr.model=ppocrv4-en``); names are
            checked against each reward's declared options before anything loads.
        out: run directory.
    """

    model: str = "tiny-flux2"
    suites: tuple[str, ...] = ("smoke",)
    rewards: tuple[str, ...] = ()
    benchmark: str | None = None
    limit: int | None = None
    samples_per_prompt: int | None = None
    seed: int = 0
    batch_size: int = 4
    device: str = "auto"
    dtype: str | None = None
    weights: str | None = None
    lora: tuple[str, ...] = ()
    overrides: ModelOverrides = field(default_factory=ModelOverrides)
    bootstrap_resamples: int = 1000
    reward_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    out: str = "runs/latest"
