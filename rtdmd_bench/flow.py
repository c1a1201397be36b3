"""Rectified-flow conventions shared by every generator, trainer and test (ALGORITHM.md §1).

One source of truth for:

* the interpolation ``x_σ = (1−σ)·x0 + σ·ε`` and the recoveries from a velocity ``v`` (eq. 1.2-1.3),
* sigma <-> model timestep (``t = 1000·σ``, §1.2) including the FLUX bf16 timestep quantisation (P1),
* the shift schedules: static (SD3/SD3.5), dynamic exponential with ``μ`` from the token count (FLUX.1),
  the empirical ``μ`` of FLUX.2-klein, and ``few_step_sigmas`` reproducing the §1.3 table.

Tensors functions accept ``sigma`` as a Python float, a 0-d tensor or a ``[B]`` tensor; a ``[B]`` sigma is
broadcast over the non-batch dimensions of ``x``. Schedule functions are pure Python (no torch import).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

NUM_TRAIN_TIMESTEPS = 1000
SD3_SHIFT = 3.0  # scheduler.config.shift of SD3-M and SD3.5-M
FAMILIES = ("sd3", "sd35", "flux1", "flux2_klein")


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
def static_shift(u: float, shift: float = SD3_SHIFT) -> float:
    """SD3 static shift: ``σ = shift·u / (1 + (shift−1)·u)``."""
    return shift * u / (1 + (shift - 1) * u)


def exponential_shift(u: float, mu: float) -> float:
    """Exponential time shift (FLUX): ``σ = e^μ / (e^μ + 1/u − 1)``; ``u=1 -> 1``."""
    return math.exp(mu) / (math.exp(mu) + (1 / u - 1))


def linear_shift(u: float, mu: float) -> float:
    """Linear time shift (``time_shift_type == "linear"``): ``σ = μ / (μ + 1/u − 1)``."""
    return mu / (mu + (1 / u - 1))


def flux1_seq_len(height: int, width: int, vae_scale: int = 8) -> int:
    """FLUX.1 packed token count ``L = (H_lat/2)·(W_lat/2)`` with ``H_lat = H/8``."""
    return (height // vae_scale // 2) * (width // vae_scale // 2)


def flux2_seq_len(height: int, width: int, vae_scale: int = 8) -> int:
    """FLUX.2 token count ``L = H_lat·W_lat`` after the 2×2 patchify (``H_lat = H/16``)."""
    return (height // vae_scale // 2) * (width // vae_scale // 2)


def flux1_mu(seq_len: int, base_seq_len: int = 256, max_seq_len: int = 4096, base_shift: float = 0.5,
             max_shift: float = 1.15) -> float:
    """FLUX.1 dynamic μ, linear in the token count: ``μ = 0.5 + (1.15−0.5)/(4096−256)·(L − 256)``."""
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return base_shift + slope * (seq_len - base_seq_len)


def flux2_klein_mu(seq_len: int, num_steps: int) -> float:
    """FLUX.2-klein empirical μ (§1.3): linear in L above 4300 tokens, else interpolated in the step count."""
    m200 = 0.00016927 * seq_len + 0.45666666
    if seq_len > 4300:
        return m200
    m10 = 8.73809524e-5 * seq_len + 1.89833333
    a = (m200 - m10) / 190.0
    b = m200 - 200.0 * a
    return a * num_steps + b


def stretch_to_terminal(sigmas: Sequence[float], shift_terminal: float) -> list[float]:
    """Rescale ``1−σ`` so that the last sigma equals ``shift_terminal`` (diffusers ``stretch_shift_to_terminal``)."""
    one_minus = [1 - s for s in sigmas]
    scale = one_minus[-1] / (1 - shift_terminal)
    return [1 - om / scale for om in one_minus]


def family_mu(family: str, height: int, width: int, num_steps: int) -> float | None:
    """The dynamic-shift μ of ``family`` at this resolution (None for the static-shift SD3 family)."""
    if family in ("sd3", "sd35"):
        return None
    if family == "flux1":
        return flux1_mu(flux1_seq_len(height, width))
    if family == "flux2_klein":
        return flux2_klein_mu(flux2_seq_len(height, width), num_steps)
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def few_step_sigmas(family: str, step_list: Sequence[float], height: int, width: int, *, shift: float = SD3_SHIFT,
                    time_shift_type: str = "exponential", shift_terminal: float | None = None) -> list[float]:
    """Shifted few-step sigmas for ``step_list`` (timesteps in (0, 1000]), without the terminal 0 (§1.3).

    With ``u = step/1000``: SD3/SD3.5 ``σ = static_shift(u, shift)`` rounded to 6 decimals (any resolution);
    FLUX.1 ``σ = exponential_shift(u, flux1_mu(L))``; FLUX.2-klein ``σ = exponential_shift(u, flux2_klein_mu(L, N))``
    (then stretched to ``shift_terminal`` if given). Example: ``few_step_sigmas("flux2_klein", [1000, 750, 500, 250],
    1024, 1024) -> [1.0, 0.9674, 0.9081, 0.7672]`` (to 4 decimals).

    Returns:
        N floats, decreasing, ``σ_0 = 1`` for a step list starting at 1000.
    """
    us = [float(s) / NUM_TRAIN_TIMESTEPS for s in step_list]
    if any(not 0 < u <= 1 for u in us):
        raise ValueError(f"step_list entries must be in (0, 1000]; got {list(step_list)}")
    if family in ("sd3", "sd35"):
        return [round(static_shift(u, shift), 6) for u in us]
    mu = family_mu(family, height, width, len(us))
    shift_fn = linear_shift if time_shift_type == "linear" else exponential_shift
    sigmas = [shift_fn(u, mu) for u in us]
    if shift_terminal is not None:
        sigmas = stretch_to_terminal(sigmas, shift_terminal)
    return sigmas


def with_terminal_zero(sigmas: Sequence[float]) -> list[float]:
    """Append exactly one terminal ``σ_N = 0`` (CPS ``set_timesteps`` never re-shifts the given sigmas)."""
    return [float(s) for s in sigmas] + [0.0]
