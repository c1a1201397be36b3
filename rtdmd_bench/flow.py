"""Rectified-flow conventions shared by every generator, trainer and test (ALGORITHM.md §1); family-free.

One source of truth for:

* the interpolation ``x_σ = (1−σ)·x0 + σ·ε`` and the recoveries from a velocity ``v`` (eq. 1.2-1.3),
* sigma <-> model timestep (``t = 1000·σ``, §1.2) including the bf16 timestep quantisation of the FLUX
  wrappers (P1), and sigma as a per-sample batch (``sigma_batch``),
* the shift functions: static (``static_shift``), dynamic exponential/linear with a given ``μ``
  (``dynamic_shift``), the terminal stretch, the terminal zero.

What each generator family does with them (its μ rule, its timestep convention) lives in its ``FamilySpec``
(``rtdmd_bench.models.family``). Tensor functions accept ``sigma`` as a Python float, a 0-d tensor or a ``[B]``
tensor; a ``[B]`` sigma is broadcast over the non-batch dimensions of ``x``. Schedule functions are pure Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

NUM_TRAIN_TIMESTEPS = 1000


# ---------------------------------------------------------------------------------------------- tensors
def expand_sigma(sigma: Any, like: Any) -> Any:
    """``sigma`` (float, 0-d, ``[B]`` or ``[B,1,..,1]``) as something broadcastable against ``like`` ``[B, ...]``.

    A ``[B]`` tensor becomes ``[B, 1, ..., 1]`` (one trailing 1 per non-batch dim of ``like``); a float stays a float.
    """
    import torch

    if not isinstance(sigma, torch.Tensor):
        return float(sigma)
    sigma = sigma.to(device=like.device)
    if sigma.ndim == 0:
        return sigma
    if sigma.ndim == like.ndim and all(d == 1 for d in sigma.shape[1:]):
        return sigma  # already expanded ([B,1,...,1])
    if sigma.ndim != 1 or sigma.shape[0] not in (1, like.shape[0]):
        raise ValueError(f"sigma must be a float, a 0-d tensor or [B]; got shape {tuple(sigma.shape)} for x {tuple(like.shape)}")
    return sigma.reshape(-1, *([1] * (like.ndim - 1)))


def sigma_batch(sigma: Any, n: int, device: Any) -> Any:
    """``sigma`` (float, 0-d or ``[n]``) as a fresh fp32 ``[n]`` tensor on ``device`` (one level per sample)."""
    import torch

    s = torch.as_tensor(sigma, dtype=torch.float32, device=device)
    return s.expand(n).clone() if s.ndim == 0 else s.reshape(n)


def interpolate(x0: Any, noise: Any, sigma: Any) -> Any:
    """Forward interpolation (eq. 1.1): ``x_σ = (1−σ)·x0 + σ·ε``; shapes ``[B, ...]``."""
    s = expand_sigma(sigma, x0)
    return (1 - s) * x0 + s * noise


def target_velocity(x0: Any, noise: Any) -> Any:
    """Flow-matching target (eq. 1.1): ``v* = ε − x0``."""
    return noise - x0


def x0_from_velocity(x: Any, v: Any, sigma: Any) -> Any:
    """x0-prediction (eq. 1.2): ``x̂0 = x_σ − σ·v``; ``x, v`` are ``[B, ...]``, sigma float or ``[B]``."""
    return x - expand_sigma(sigma, x) * v


def noise_from_velocity(x: Any, v: Any, sigma: Any) -> Any:
    """Noise-prediction (eq. 1.3): ``ε̂ = x_σ + (1−σ)·v``; ``x, v`` are ``[B, ...]``, sigma float or ``[B]``."""
    return x + (1 - expand_sigma(sigma, x)) * v


def velocity_from_x0(x: Any, x0: Any, sigma: Any) -> Any:
    """Inverse of eq. 1.2: ``v = (x_σ − x̂0)/σ`` (undefined at σ=0)."""
    return (x - x0) / expand_sigma(sigma, x)


def sigma_to_timestep(sigma: Any) -> Any:
    """Model timestep ``t = 1000·σ`` (§1.2; σ is the already-shifted value, no further shift)."""
    return sigma * NUM_TRAIN_TIMESTEPS


def timestep_to_sigma(timestep: Any) -> Any:
    """``σ = t/1000`` (also how continuous renoise timesteps map to σ: linearly, no shift, P1)."""
    return timestep / NUM_TRAIN_TIMESTEPS


def quantized_flux_sigma(sigma: Any, dtype: Any) -> Any:
    """σ as the FLUX.1/FLUX.2 wrappers feed it: ``(1000σ).to(dtype)/1000`` (P1).

    In bf16 this quantises ``1000σ`` to multiples of 4 in [512,1024) and of 2 in [256,512); in fp32 it is a no-op
    up to rounding. Returns a tensor of ``dtype``'s precision promoted back to float32.
    """
    import torch

    t = torch.as_tensor(sigma, dtype=torch.float32) * NUM_TRAIN_TIMESTEPS
    return t.to(dtype).float() / NUM_TRAIN_TIMESTEPS


# ---------------------------------------------------------------------------------------------- shifts
def static_shift(u: float, shift: float) -> float:
    """SD3 static shift: ``σ = shift·u / (1 + (shift−1)·u)``."""
    return shift * u / (1 + (shift - 1) * u)


def exponential_shift(u: float, mu: float) -> float:
    """Exponential time shift (FLUX): ``σ = e^μ / (e^μ + 1/u − 1)``; ``u=1 -> 1``."""
    return math.exp(mu) / (math.exp(mu) + (1 / u - 1))


def linear_shift(u: float, mu: float) -> float:
    """Linear time shift (``time_shift_type == "linear"``): ``σ = μ / (μ + 1/u − 1)``."""
    return mu / (mu + (1 / u - 1))


def stretch_to_terminal(sigmas: Sequence[float], shift_terminal: float) -> list[float]:
    """Rescale ``1−σ`` so that the last sigma equals ``shift_terminal`` (diffusers ``stretch_shift_to_terminal``)."""
    one_minus = [1 - s for s in sigmas]
    scale = one_minus[-1] / (1 - shift_terminal)
    return [1 - om / scale for om in one_minus]


def dynamic_shift(us: Sequence[float], mu: float, time_shift_type: str = "exponential",
                  shift_terminal: float | None = None) -> list[float]:
    """Dynamic shift of every ``u``: ``exponential_shift`` (or ``linear_shift`` when ``time_shift_type ==
    "linear"``) with ``μ``, then stretched to ``shift_terminal`` when given (the FLUX schedules of §1.3)."""
    shift_fn = linear_shift if time_shift_type == "linear" else exponential_shift
    sigmas = [shift_fn(u, mu) for u in us]
    return stretch_to_terminal(sigmas, shift_terminal) if shift_terminal is not None else sigmas


def with_terminal_zero(sigmas: Sequence[float]) -> list[float]:
    """Append exactly one terminal ``σ_N = 0`` (CPS ``set_timesteps`` never re-shifts the given sigmas)."""
    return [float(s) for s in sigmas] + [0.0]
