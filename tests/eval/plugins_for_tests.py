"""``module:Attr`` plugins used by the evaluation tests (the plugin mechanism is a product feature)."""

from __future__ import annotations

import os
import time

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.spec import RewardSpec


class SlowTinyFlux2:
    """tiny-flux2 with a pause after each batch, so a test can SIGKILL the process mid-run."""

    @classmethod
    def from_weights(cls, spec, root, **kwargs):
        from rtdmd_bench.models import MODELS

        real = MODELS.get("tiny-flux2").from_weights(MODELS.spec("tiny-flux2"), root, **kwargs)
        delay = float(os.environ.get("SLOW_MODEL_DELAY", "0.3"))
        inner = real.generate

        def generate(prompts, seeds):
            out = inner(prompts, seeds)
            time.sleep(delay)
            return out

        real.generate = generate
        return real


class NanOnOddPrompt(Reward):
    """Mean brightness, but NaN for odd prompt lengths: exercises invalid-score accounting."""

    spec = RewardSpec(name="nan_on_odd", target="plugins_for_tests:NanOnOddPrompt", description="test reward",
                      version="t1", units="brightness", value_range=(0.0, 1.0), needs_prompt=True)

    def score(self, images, prompts, metadata):
        scores = images.mean(dim=(1, 2, 3))
        odd = torch.tensor([len(p) % 2 == 1 for p in prompts])
        scores = torch.where(odd, torch.full_like(scores, float("nan")), scores)
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool))


assert "nan_on_odd" not in REWARDS
