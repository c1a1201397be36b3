"""Baseline: plain DMD (DMD2-style) in the stage-1 framework, without the ambient target and consistency.

The generator's x̂0 of the last executed step (s = 0) is renoised, the fake score learns plain flow matching on it
and the generator gets ``dmd_loss`` on x̂0 (§1.4, §3.6 at s = 0). Only the defaults differ from stage 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rtdmd_bench.trainers import stage1_acdmd
from rtdmd_bench.trainers.stage1_acdmd import DMDSection, Stage1Config

from rtdmd_bench.training.config import ConsistencySection, RenoiseSection


@dataclass(frozen=True)
class DMDConfig(Stage1Config):
    """Stage-1 config with ``dmd.ambient=false``, consistency off and the unscaled FM target."""

    dmd: DMDSection = field(default_factory=lambda: DMDSection(ambient=False))
    consistency: ConsistencySection = field(default_factory=lambda: ConsistencySection(enabled=False))
    renoise: RenoiseSection = field(default_factory=lambda: RenoiseSection(scale_out=False))


RECIPE = dataclasses.replace(stage1_acdmd.RECIPE, config=DMDConfig)
