"""What every family adapter shares: loading, the prompt cache, seeding, sampling, describe().

A family module (``sd3.py``, ``flux1.py``, ``flux2_klein.py``) subclasses ``FlowGenerator`` with ``_encode_batch``,
``predict_velocity``, ``decode`` and ``latent_shape``; everything else family-specific (pipeline class, sigma
schedules, timestep convention, guidance kind) is read from its ``FamilySpec`` (``self.family``). Latents are
always spatial ``[B, C, h, w]`` (FLUX token packing happens inside ``predict_velocity``), so trainers see one
layout for every family. Sampling runs the one CPS loop, ``sampling.cps_rollout``.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rtdmd_bench.flow import sigma_to_timestep, with_terminal_zero
from rtdmd_bench.models.family import FAMILIES, FamilySpec
from rtdmd_bench.models.spec import ModelSpec

DEFAULT_CACHE_SIZE = 256  # prompts; a FLUX.2-klein-4B entry is ~8 MB in bf16


@dataclass
class Cond:
    """Text conditioning, batch-first.

    Attributes:
        embeds: ``[B, L, D]`` token embeddings (SD3: CLIP‖T5 along L; FLUX.1: T5; FLUX.2: stacked Qwen3 layers).
        pooled: ``[B, P]`` pooled embedding (SD3: both CLIP ``text_embeds``; FLUX.1: CLIP pooler) or None (FLUX.2).
    """

    embeds: Any
    pooled: Any = None

    def __len__(self) -> int:
        return int(self.embeds.shape[0])

    def select(self, index: Any) -> Cond:
        """Rows ``index`` (int list, LongTensor or slice); repeated indices repeat rows."""
        import torch

        if isinstance(index, (list, tuple)):
            index = torch.as_tensor(index, dtype=torch.long, device=self.embeds.device)
        return Cond(self.embeds[index], None if self.pooled is None else self.pooled[index])

    def repeat_interleave(self, k: int) -> Cond:
        """Each row ``k`` times in a row (K samples per prompt)."""
        return Cond(self.embeds.repeat_interleave(k, 0), None if self.pooled is None else self.pooled.repeat_interleave(k, 0))

    def to(self, *args: Any, **kwargs: Any) -> Cond:
        return Cond(self.embeds.to(*args, **kwargs), None if self.pooled is None else self.pooled.to(*args, **kwargs))

    @staticmethod
    def cat(conds: Sequence[Cond]) -> Cond:
        import torch

        pooled = None if conds[0].pooled is None else torch.cat([c.pooled for c in conds])
        return Cond(torch.cat([c.embeds for c in conds]), pooled)


def torch_dtype(name: Any, device: Any) -> Any:
    """The compute dtype: an explicit dtype wins; otherwise float32 on CPU and ``name`` (``bfloat16``) elsewhere."""
    import torch

    if isinstance(name, torch.dtype):
        return name
    if str(torch.device(device).type) == "cpu":
        return torch.float32
    return getattr(torch, str(name).replace("bf16", "bfloat16").replace("fp16", "float16"))


def cfg_combine(v_uncond: Any, v_cond: Any, scale: float) -> Any:
    """Classic two-pass classifier-free guidance: ``v = v_∅ + w·(v_c − v_∅)``."""
    return v_uncond + scale * (v_cond - v_uncond)


def normalise_spec(spec: ModelSpec, overrides: dict[str, Any]) -> ModelSpec:
    """Apply overrides; a CPS ``steps`` override without a ``step_list`` gets the evenly spaced list."""
    fields = {f.name for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown model override(s) {unknown}; valid: {sorted(fields - {'name', 'target'})}")
    spec = dataclasses.replace(spec, **overrides)
    if spec.sampler == "cps" and len(spec.step_list) != spec.steps:
        if "step_list" in overrides:
            raise ValueError(f"steps={spec.steps} but step_list has {len(spec.step_list)} entries")
        spec = dataclasses.replace(spec, step_list=tuple(float(sigma_to_timestep(1 - i / spec.steps))
                                                         for i in range(spec.steps)))
    fam = FAMILIES.spec(spec.family)
    if spec.sampler not in fam.samplers:
        raise ValueError(f"unknown sampler {spec.sampler!r} for family {spec.family!r}; expected one of {list(fam.samplers)}")
    check_sampling(spec, fam.resolution_multiple)
    return spec


def check_sampling(spec: ModelSpec, multiple: int) -> None:
    """Raise ``ValueError`` naming the setting unless the sampling values are usable (before any model loads)."""
    import math

    if spec.steps < 1:
        raise ValueError(f"steps must be >= 1, got {spec.steps} (model {spec.name})")
    if not 0.0 <= spec.eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1] (0 = Euler/ODE, 1 = full renoising), got {spec.eta}")
    if not math.isfinite(spec.guidance) or spec.guidance <= 0:
        raise ValueError(f"guidance must be a finite number > 0 (1 = no CFG), got {spec.guidance}")
    for side, value in (("height", spec.height), ("width", spec.width)):
        if value < multiple or value % multiple:
            raise ValueError(f"{side}={value} is not a positive multiple of {multiple} (the {spec.family} latent "
                             f"grid); use e.g. {max(multiple, round(value / multiple) * multiple)}")


def load_pipeline(pipeline_class: str, folder: Path, dtype: Any, name: str) -> Any:
    """``diffusers.<pipeline_class>.from_pretrained(folder)`` offline; a missing or truncated component file is a
    ``MissingWeightsError`` naming the folder, the failing file (as diffusers reports it) and the fix."""
    import diffusers
    from safetensors import SafetensorError

    from rtdmd_bench.weights import MissingWeightsError

    try:
        return getattr(diffusers, pipeline_class).from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MissingWeightsError(
            f"could not load {name!r} from {folder}: {detail}. A weight file is missing, truncated or from another "
            f"model; re-download with `rtdmd-bench weights fetch {name}` (or check the folder's files).") from exc


class FlowGenerator:
    """Base adapter. Build with ``from_weights``; see ``rtdmd_bench.models`` for the public API."""

    default_max_sequence_length: ClassVar[int] = 512

    def __init__(self, spec: ModelSpec, pipe: Any, *, root: Path, device: Any, dtype: Any,
                 lora_records: list[dict[str, Any]]):
        self.spec, self.pipe, self.root = spec, pipe, Path(root)
        self.family: FamilySpec = FAMILIES.spec(spec.family)
        self.device, self.dtype = device, dtype
        self.lora_records = lora_records
        self.transformer, self.vae = pipe.transformer, pipe.vae
        self._cache: OrderedDict[str, Cond] = OrderedDict()
        self._stats = {"hits": 0, "misses": 0, "encoder_calls": 0}

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_weights(cls, spec: ModelSpec, root: str | Path, device: Any = "cpu", dtype: Any = None,
                     lora: Sequence[str] = (), **overrides: Any) -> FlowGenerator:
        """Load ``root / spec.weights_dir`` offline, merge ``spec.lora`` then ``lora`` in order, freeze everything."""
        import torch

        from rtdmd_bench.models.lora import merge_lora_stack
        from rtdmd_bench.weights import require_files

        spec = normalise_spec(spec, overrides)
        root = Path(root)
        require_files(root, [f"{spec.weights_dir}/model_index.json", *spec.lora], spec.name)
        extra_lora = [p if Path(p).is_absolute() else str(root / p) for p in lora]
        require_files(root, extra_lora, spec.name)  # root / "/abs/path" is "/abs/path"
        dtype = dtype or torch_dtype(spec.dtype, device)
        pipe = load_pipeline(FAMILIES.spec(spec.family).pipeline_class, root / spec.weights_dir, dtype, spec.name)
        pipe.to(device)
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.eval().requires_grad_(False)  # trainers enable what they train (LoRA)
        extras = dict(spec.extra)
        records = merge_lora_stack(pipe.transformer, [str(root / p) for p in spec.lora] + extra_lora,
                                   rank=int(extras.get("lora_rank", 32)), alpha=float(extras.get("lora_alpha", 64)),
                                   converter=getattr(type(pipe), "lora_state_dict", None))
        return cls(spec, pipe, root=root, device=device, dtype=dtype, lora_records=records)

    def option(self, key: str, default: Any = None) -> Any:
        """A family setting from ``spec.extra`` (``max_sequence_length``, ``text_encoder_out_layers``, ...)."""
        return dict(self.spec.extra).get(key, default)

    # ------------------------------------------------------------------------------------------ text
    def encode(self, prompts: Sequence[str]) -> Cond:
        """``Cond`` for ``prompts`` (no grad). Each unique prompt is encoded once and cached (LRU)."""
        import torch

        prompts = list(prompts)
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        fresh: dict[str, Cond] = {}
        if missing:
            with torch.no_grad():
                batch = self._encode_batch(missing)
            self._stats["encoder_calls"] += 1
            fresh = {p: batch.select([i]) for i, p in enumerate(missing)}
        self._stats["misses"] += len(missing)
        self._stats["hits"] += len(prompts) - len(missing)
        rows = [fresh[p] if p in fresh else self._cache[p] for p in prompts]
        for p in prompts:  # refresh LRU order, then insert the new ones
            if p in self._cache:
                self._cache.move_to_end(p)
        self._cache.update(fresh)
        while len(self._cache) > int(self.option("prompt_cache_size", DEFAULT_CACHE_SIZE)):
            self._cache.popitem(last=False)
        return Cond.cat(rows)

    def encode_uncond(self, n: int) -> Cond:
        """The empty-string embedding (the unconditional input, §1.6), broadcast to ``n`` rows."""
        return self.encode([""]).select([0] * n)

    def cache_info(self) -> dict[str, int]:
        """Prompt-cache counters: hits / misses (per prompt occurrence), encoder_calls, size."""
        return {**self._stats, "size": len(self._cache)}

    def _encode_batch(self, prompts: list[str]) -> Cond:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ model
    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(C, h, w)`` of one latent at the spec's resolution."""
        raise NotImplementedError

    def predict_velocity(self, x: Any, sigma: Any, cond: Cond, guidance: float = 1.0, transformer: Any = None) -> Any:
        raise NotImplementedError

    def decode(self, latents: Any) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ sampling
    @property
    def sigmas(self) -> list[float]:
        """The spec's schedule with the terminal 0: CPS few-step sigmas, or the family's Euler schedule."""
        if self.spec.sampler == "cps":
            return self.cps_sigmas()
        return self.euler_sigmas(self.spec.steps)

    def cps_sigmas(self, step_list: Sequence[float] | None = None) -> list[float]:
        """Few-step CPS levels (§1.3) for ``step_list`` (default ``spec.step_list``) plus the terminal 0, at the
        spec's resolution, whatever ``spec.sampler`` is (a teacher entry used to train a few-step generator)."""
        steps = self.spec.step_list if step_list is None else step_list
        return with_terminal_zero(self.family.cps_sigmas(steps, self.spec.height, self.spec.width,
                                                         self.pipe.scheduler.config))

    def euler_sigmas(self, steps: int) -> list[float]:
        """The family's standard ``steps``-step FlowMatch Euler schedule (with its terminal 0), from its scheduler."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        cfg = self.pipe.scheduler.config
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(cfg)
        scheduler.set_timesteps(**self.family.euler_kwargs(steps, self.spec.height, self.spec.width, cfg))
        return [float(s) for s in scheduler.sigmas]

    def initial_noise(self, seeds: Sequence[int], generators: Sequence[Any] | None = None) -> Any:
        """``x_{σ=1} ~ N(0, I)``, ``[B, C, h, w]`` in the model dtype; row i drawn in fp32 from a CPU generator
        seeded with ``seeds[i]`` (or from ``generators[i]``), so it never depends on the batch or the device."""
        import torch

        gens = generators or [torch.Generator().manual_seed(int(s)) for s in seeds]
        return self._draw(gens).to(self.dtype)

    def _draw(self, generators: Sequence[Any]) -> Any:
        import torch

        rows = [torch.randn(self.latent_shape, generator=g, dtype=torch.float32) for g in generators]
        return torch.stack(rows).to(self.device)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int], *, sigmas: Sequence[float] | None = None,
                 eta: float | None = None, guidance: float | None = None) -> Any:
        """Images ``float32 [B, 3, H, W]`` in [0, 1]; image i depends only on ``(prompts[i], seeds[i])``.

        Few-step models run CPS (eq. 2.1) on ``self.sigmas``; teachers run Euler (CPS with η=0) on the family's
        schedule with CFG. Each stochastic step's noise is drawn after the initial latent from the same per-sample
        CPU generator. Latents are cast back to the model dtype after each step, as the reference inference does.
        """
        import torch

        from rtdmd_bench.sampling import cps_rollout

        prompts, seeds = list(prompts), list(seeds)
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        sig = list(sigmas) if sigmas is not None else self.sigmas
        eta = (self.spec.eta if self.spec.sampler == "cps" else 0.0) if eta is None else eta
        guidance = self.spec.guidance if guidance is None else guidance
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        with torch.no_grad():
            cond = self.encode(prompts)
            x = cps_rollout(self.initial_noise(seeds, gens),
                            lambda xk, sigma, k: self.predict_velocity(xk, sigma, cond, guidance),
                            torch.tensor(sig, dtype=torch.float32, device=self.device), eta,
                            lambda k: self._draw(gens), carry=lambda step: step.sample.to(self.dtype))
            return self.decode(x)

    # ------------------------------------------------------------------------------------------ metadata
    def describe(self) -> dict[str, Any]:
        """Provenance for results.json ``model``.

        A LoRA with a ``training.json`` beside it adds ``training`` (that file's content, path and sha256) to its
        ``lora`` entry, and the stack's optimised reward names become ``training_rewards`` (read by the
        reward-hacking check of ``rtdmd-bench report compare``); without one, neither key appears.
        """
        from rtdmd_bench.models.lora import training_reward_names
        from rtdmd_bench.weights import is_tiny

        s = self.spec
        loras = [{"path": r["path"], "sha256": r["sha256"], **({"training": r["training"]} if r.get("training") else {})}
                 for r in self.lora_records]
        trained = {"training_rewards": training_reward_names(self.lora_records)} if any(
            r.get("training") for r in self.lora_records) else {}
        return {"name": s.name, "family": s.family, "base": s.hub_id, "revision": s.revision,
                "weights_dir": s.weights_dir, "lora": loras,
                "nfe": s.nfe, "steps": s.steps, "step_list": list(s.step_list) if s.sampler == "cps" else None,
                "sigmas": self.sigmas, "eta": s.eta if s.sampler == "cps" else 0.0, "guidance": s.guidance,
                "height": s.height, "width": s.width, "dtype": str(self.dtype).replace("torch.", ""),
                "sampler": s.sampler, "tiny": bool(s.tiny or is_tiny(self.root)), **trained}
