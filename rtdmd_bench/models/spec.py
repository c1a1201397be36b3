"""Generator metadata (no torch import): everything a leaderboard and ``rtdmd-bench list models`` show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtdmd_bench.registry import Spec


@dataclass(frozen=True)
class ModelSpec(Spec):
    """Declared generator entry.

    Attributes:
        family: a registered generator family (``models.family.FAMILIES``: ``sd3``, ``sd35``, ``flux1``, ...).
        weights_dir: diffusers pipeline folder, relative to the weights root.
        hub_id / revision: where ``weights fetch`` gets ``weights_dir`` from.
        lora: LoRA files merged in order, relative to the weights root.
        lora_hub: ``(hub repo id, filename, destination under the root)`` for each LoRA file.
        height / width: generation resolution.
        sampler: ``cps`` (few-step CPS on ``step_list``) or ``euler_cfg`` (the family's multi-step sampler).
        steps: number of sampler steps (NFE per image is ``steps`` or ``2*steps`` with two-pass CFG).
        step_list: few-step timesteps in [0, 1000] turned into sigmas by the family's ``cps_sigmas``.
        eta: CPS stochasticity.
        guidance: CFG scale (two-pass) or distilled guidance value (FLUX.1), 1.0 = off.
        dtype: ``bfloat16`` on GPU by default; CPU always runs float32.
        license: license note of the base weights.
        tiny: built from tiny random weights (never mixed with real results).
        extra: family-specific settings (e.g. ``max_sequence_length``, ``text_encoder_out_layers``).
    """

    family: str = ""
    weights_dir: str = ""
    hub_id: str = ""
    revision: str = "main"
    lora: tuple[str, ...] = ()
    lora_hub: tuple[tuple[str, str, str], ...] = ()
    height: int = 1024
    width: int = 1024
    sampler: str = "cps"
    steps: int = 4
    step_list: tuple[float, ...] = (1000.0, 750.0, 500.0, 250.0)
    eta: float = 0.9
    guidance: float = 1.0
    dtype: str = "bfloat16"
    license: str = ""
    tiny: bool = False
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @property
    def nfe(self) -> int:
        """Transformer forwards per image: ``steps`` × the family's forwards per step (2 with two-pass CFG)."""
        from rtdmd_bench.models.family import FAMILIES

        passes = FAMILIES.spec(self.family).forwards_per_step(self.guidance) if self.family in FAMILIES else 1
        return self.steps * passes

    def summary(self) -> dict[str, str]:
        return {
            "family": self.family,
            "NFE": str(self.nfe),
            "res": f"{self.height}x{self.width}",
            "sampler": f"{self.sampler} eta={self.eta:g}" if self.sampler == "cps" else self.sampler,
            "cfg": f"{self.guidance:g}",
            "lora": str(len(self.lora)),
        }
