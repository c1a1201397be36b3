"""Baseline: pure Flow-GRPO in the stage-2 framework: policy gradient on the stochastic steps only, no
distribution-matching term, no reward back-propagation, no fake score; optional KL to the initial policy
(``policy.kl_beta``, the LoRA-disabled generator). Only the defaults differ from stage 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rtdmd_bench.trainers import stage2_rtdmd
from rtdmd_bench.trainers.stage2_rtdmd import AuxSection, BPSection, PolicySection, Stage2Config


@dataclass(frozen=True)
class GRPOConfig(Stage2Config):
    """Stage-2 config with ``aux.loss=none``, ``bp.enabled=false`` and every stochastic step trained."""

    aux: AuxSection = field(default_factory=lambda: AuxSection(loss="none"))
    bp: BPSection = field(default_factory=lambda: BPSection(enabled=False))
    policy: PolicySection = field(default_factory=lambda: PolicySection(step_selection=False))


RECIPE = dataclasses.replace(stage2_rtdmd.RECIPE, config=GRPOConfig)
