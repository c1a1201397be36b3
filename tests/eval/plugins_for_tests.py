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


class FailsOnCall:
    """The GPU stand-in (no wait) whose ``generate`` call number ``$FAIL_ON_CALL`` (default 1) raises."""

    spec = None

    @classmethod
    def from_weights(cls, spec, root, **kwargs):
        from rtdmd_bench.bench.standin import StandInGenerator

        gen = StandInGenerator.from_weights(None, root, **kwargs)
        gen.seconds_per_image = 0.0
        calls = {"n": 0}
        inner = gen.generate
        fail_on = int(os.environ.get("FAIL_ON_CALL", "1"))

        def generate(prompts, seeds, **kw):
            calls["n"] += 1
            if calls["n"] == fail_on:
                raise RuntimeError(f"simulated generator crash on call {fail_on}")
            return inner(prompts, seeds, **kw)

        gen.generate = generate
        return gen


class RaisesOnSecondBatch(Reward):
    """Mean brightness; raises on its second call (a scorer failing mid-run, in the scorer thread)."""

    spec = RewardSpec(name="raises_second", target="plugins_for_tests:RaisesOnSecondBatch", description="test",
                      version="t1", units="brightness", value_range=(0.0, 1.0), needs_prompt=False)
    calls = 0

    def score(self, images, prompts, metadata):
        type(self).calls += 1
        if type(self).calls == 2:
            raise RuntimeError("simulated scorer failure on the second batch")
        scores = images.mean(dim=(1, 2, 3))
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool))


class NanPartOnOdd(Reward):
    """Mean brightness with a ``half`` part that is NaN for odd prompt ids' images (a broken sub-score)."""

    spec = RewardSpec(name="nan_part", target="plugins_for_tests:NanPartOnOdd", description="test",
                      version="t1", units="brightness", value_range=(0.0, 1.0), needs_prompt=True)

    def score(self, images, prompts, metadata):
        scores = images.mean(dim=(1, 2, 3))
        part = torch.where(torch.tensor([len(p) % 2 == 1 for p in prompts]), torch.full_like(scores, float("nan")),
                           scores / 2)
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool), parts={"half": part})
