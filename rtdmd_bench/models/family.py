"""Generator families: everything the harness knows about one diffusers architecture, in one ``FamilySpec``.

A family module (``sd3.py``, ``flux1.py``, ``flux2_klein.py``; torch-free at import) defines its adapter class
and registers its spec(s) in ``FAMILIES``; ``models/catalog.py`` imports the family modules for its entries, so
``import rtdmd_bench.models`` fills both registries. Everything family-dependent asks the spec:

* loading and recognition: ``pipeline_class``, ``recognise(model_index, transformer_config)``;
* the model's timestep input: ``timestep`` (``1000_sigma``: the model gets ``1000σ`` in fp32; ``quantized_sigma``:
  it gets ``(1000σ).to(dtype)/1000`` and multiplies by 1000 itself, the FLUX bf16 quantisation of pitfall P1),
  through ``timestep_input`` and the conversions of ``rtdmd_bench.flow``;
* guidance: ``cfg`` (two-pass classifier-free guidance) or ``embedded`` (a distilled guidance input, one pass);
* sigma schedules: ``shift_sigmas`` (few-step CPS levels, ALGORITHM.md §1.3) and ``euler_kwargs`` (the family's
  standard multi-step FlowMatch-Euler schedule, as its diffusers pipeline sets it);
* LoRA target modules of the generator and fake score (§3.1);
* the tiny preset: catalogue name and a builder of the real pipeline class with a tiny config.

``flow.py`` keeps only family-free math. Adding a family is one new module, its catalogue entries and its
tests (``docs/extending.md``); the test suite parametrises over ``FAMILIES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rtdmd_bench.registry import Registry, Spec

SAMPLERS = ("cps", "euler_cfg")


@dataclass(frozen=True)
class TinyPreset:
    """A tiny random-weights instance of a family (tests, ``--weights tiny``).

    Attributes:
        name: catalogue name (``tiny-sd3``), also the folder ``models/<name>`` under the weights root.
        builder: ``() -> diffusers pipeline`` of the REAL classes with a tiny config (no network, < 1 s).
        what: one phrase for ``rtdmd-bench list models``.
    """

    name: str
    builder: Callable[[], Any]
    what: str = ""


@dataclass(frozen=True)
class FamilySpec(Spec):
    """One generator family. ``target`` is its adapter class (``models.common.FlowGenerator`` subclass).

    Attributes:
        pipeline_class: diffusers pipeline class name (``StableDiffusion3Pipeline``).
        recognise: ``(model_index, transformer_config) -> bool``: does a diffusers folder hold this family?
        timestep: ``1000_sigma`` (model input ``1000σ``, fp32) or ``quantized_sigma`` (``(1000σ).to(dtype)/1000``, P1).
        guidance: ``cfg`` (two forwards per step when guidance > 1) or ``embedded`` (one forward, distilled input).
        shift_sigmas: ``(u [N] in (0, 1], height, width, scheduler_config) -> σ [N]``, the shifted few-step levels.
        euler_kwargs: ``(steps, height, width, scheduler_config) -> set_timesteps kwargs`` of the family's
            standard multi-step FlowMatch-Euler sampler (teachers).
        lora_targets: ``transformer -> [peft target module names]`` (§3.1).
        tiny: the tiny preset.
        samplers: supported ``ModelSpec.sampler`` values.
        resolution_multiple: height and width must be multiples of this (VAE factor × patch size).
        latent: shape of a latent in words (docs).
    """

    pipeline_class: str = ""
    recognise: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] = field(default=lambda mi, tc: False)
    timestep: Literal["1000_sigma", "quantized_sigma"] = "1000_sigma"
    guidance: Literal["cfg", "embedded"] = "cfg"
    shift_sigmas: Callable[[Sequence[float], int, int, Mapping[str, Any]], list[float]] | None = None
    euler_kwargs: Callable[[int, int, int, Mapping[str, Any]], dict[str, Any]] = field(
        default=lambda steps, h, w, cfg: {"num_inference_steps": steps})
    lora_targets: Callable[[Any], list[str]] = field(default=lambda net: [])
    tiny: TinyPreset | None = None
    samplers: tuple[str, ...] = SAMPLERS
    resolution_multiple: int = 16
    latent: str = ""

    def summary(self) -> dict[str, str]:
        return {"pipeline": self.pipeline_class, "timestep": self.timestep, "guidance": self.guidance,
                "samplers": ",".join(self.samplers), "tiny": self.tiny.name if self.tiny else "-"}

    def timestep_input(self, sigma: Any, dtype: Any) -> Any:
        """The transformer's ``timestep`` argument for levels ``sigma`` (fp32 ``[B]``): ``1000σ`` or the quantised σ."""
        from rtdmd_bench.flow import quantized_flux_sigma, sigma_to_timestep

        return sigma_to_timestep(sigma) if self.timestep == "1000_sigma" else quantized_flux_sigma(sigma, dtype)

    def forwards_per_step(self, guidance: float) -> int:
        """Transformer forwards per sampler step: 2 with two-pass CFG (``guidance > 1``), else 1."""
        return 2 if self.guidance == "cfg" and guidance > 1.0 else 1

    def cps_sigmas(self, step_list: Sequence[float], height: int, width: int,
                   scheduler_config: Mapping[str, Any]) -> list[float]:
        """Few-step levels (§1.3) for ``step_list`` (timesteps in (0, 1000]), without the terminal 0.

        Example: FLUX.2-klein at 1024² -> ``[1.0, 0.9674, 0.9081, 0.7672]`` (to 4 decimals).
        """
        from rtdmd_bench.flow import timestep_to_sigma

        us = [timestep_to_sigma(float(s)) for s in step_list]
        if any(not 0 < u <= 1 for u in us):
            raise ValueError(f"step_list entries must be in (0, 1000]; got {list(step_list)}")
        return self.shift_sigmas(us, height, width, scheduler_config)


FAMILIES: Registry[FamilySpec] = Registry("generator family")


def family(name: str) -> FamilySpec:
    """The registered family ``name`` (did-you-mean on a typo)."""
    return FAMILIES.spec(name)


def detect_family(model_index: Mapping[str, Any], transformer_config: Mapping[str, Any]) -> FamilySpec:
    """The family of a diffusers pipeline folder from its ``model_index.json`` and ``transformer/config.json``.

    Raises:
        ValueError: no registered family recognises it (the message lists the supported pipeline classes).
    """
    hits = [f for f in FAMILIES if f.recognise(model_index, transformer_config)]
    if len(hits) == 1:
        return hits[0]
    cls = model_index.get("_class_name", "?")
    if not hits:
        supported = ", ".join(sorted({f"{f.pipeline_class} ({f.name})" for f in FAMILIES}))
        raise ValueError(f"pipeline class {cls!r} is not a supported generator family; supported: {supported}")
    raise ValueError(f"pipeline class {cls!r} matches several families: {[f.name for f in hits]}")
