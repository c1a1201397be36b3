"""Config sections shared by the recipes (each recipe has its own frozen root dataclass in ``trainers/``).

Field names follow the function arguments they feed; defaults are the shipped YAML values of ALGORITHM.md §6
(never the reference dataclass defaults, pitfall P20).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelSection:
    """Backbone: registry names of the teacher/base and optional separate generator/fake inits (FLUX.2)."""

    name: str = "tiny-sd35"
    generator_init: str | None = None
    fake_init: str | None = None
    height: int | None = None          # training resolution (None: the model spec's)
    width: int | None = None
    eta: float = 0.9                   # cps_eta / noise_level
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class LoraSection:
    """LoRA on generator and fake score (§3.1); ``init_from`` merges a previous stage's LoRA first (§4.1)."""

    enabled: bool = True
    rank: int = 32
    alpha: float = 64.0
    generator_init_from: str | None = None   # e.g. <stage1 out>/lora/generator_ema.pt
    fake_init_from: str | None = None        # e.g. <stage1 out>/lora/fake_score.pt
    reference_std_one_reinit: bool = False   # P8: lora_A ~ N(0,1) after the merge (reference quirk)


@dataclass(frozen=True)
class OptimSection:
    """AdamW over the trainable (LoRA) parameters, constant LR after ``warmup_steps``, global-norm clip."""

    lr: float = 3e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0


@dataclass(frozen=True)
class EMASection:
    """EMA of the generator's trainable parameters (P7: ``reference_schedule`` reproduces the call pattern)."""

    enabled: bool = True
    decay: float = 0.99
    update_interval: int = 1
    warmup: bool = False
    reference_schedule: bool = False


@dataclass(frozen=True)
class RenoiseSection:
    """Renoising timestep draw ``t_r ~ U[1000s + offset, end]`` clamped to ``[min_step, max_step]`` (§3.3)."""

    timestep_offset: float = 10.0
    end_timestep: float = 1000.0
    min_step: float = 20.0
    max_step: float = 980.0
    scale_out: bool = True                          # target_formula_move_scale_out
    weight_clamp: tuple[float, float] = (0.0, 10.0)  # fake_loss_weight_clamp_min/max


@dataclass(frozen=True)
class ConsistencySection:
    """Two-sample consistency regulariser of the fake score (§3.5)."""

    enabled: bool = True
    weight: float = 0.01
    epsilon_timestep: float = 200.0
    two_sample: bool = True
    num_steps: Literal[1] = 1


@dataclass(frozen=True)
class DataSection:
    """Training prompts: a suite name (its manifest's ``split`` must be ``train``) or a ``.txt`` (one per line) /
    ``.jsonl`` (``prompt`` + metadata fields) path. ``allow_test_prompts`` (``--allow-test-prompts``) permits a
    ``test`` suite: recorded in training.json, and evaluations on overlapping prompts are flagged."""

    prompts: str = "smoke"
    limit: int = 0
    allow_test_prompts: bool = False


@dataclass(frozen=True)
class RunSection:
    """Run control (``steps``, cadences) and reproducibility."""

    steps: int = 10
    seed: int = 0
    save_every: int = 0
    log_every: int = 1
    console_every: int = 1
    parallel: Literal["ddp", "fsdp", "none"] = "ddp"
    log_backends: tuple[str, ...] = ("tensorboard",)
    # SampleRNG layout: one generator per block of one iteration's global batch instead of one per sample
    # (same world-size independence, far fewer generators; the draws differ, so keep it fixed across a resume)
    batched_rng: bool = False


@dataclass(frozen=True)
class EvalSection:
    """Periodic evaluation through ``rtdmd_bench.eval.evaluate`` with the EMA weights (off by default)."""

    enabled: bool = False
    every: int = 0
    suite: str = "smoke"
    rewards: tuple[str, ...] = ("saturation",)
    limit: int = 8


@dataclass(frozen=True)
class DiagnosticsSection:
    """Per-term gradient norms and the dead-term guard (``training.term_grads``).

    ``term_grad_subbatches``: sub-batches per optimizer step whose per-term gradients are measured (0 = all; each
    costs one extra backward per term); ``dead_term_patience``: measured steps a configured term may keep an
    exactly-zero gradient before the run stops with an error naming it (0 = never stop).
    """

    term_grad_subbatches: int = 1
    dead_term_patience: int = 2
