"""The CPS few-step sampler step (ALGORITHM.md §2): the only implementation of a sampler step in the package.

With ``c_η = cos(ηπ/2)``, ``s_η = sin(ηπ/2)`` and the recoveries of ``rtdmd_bench.flow`` (eq. 1.2-1.3), a step
from level ``σ`` to ``σ' < σ`` is (eq. 2.1, all in fp32)::

    x̂0 = x − σ v ,   ε̂ = x + (1−σ) v
    μ  = (1−σ')·x̂0 + σ'·c_η·ε̂          (mean, affine in v: μ = x·[(1−σ')+σ'c_η] + κ(σ,σ')·v)
    ρ  = σ'·s_η                         (std)
    x' = μ + ρ·z ,  z ~ N(0, I)

``η = 0`` is exactly the Euler step ``x + (σ'−σ)v`` and ``σ' = 0`` is deterministic (``x' = x̂0``) for any η.
``cps_rollout`` is the one loop over these steps that every sampler of the package runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from rtdmd_bench.flow import expand_sigma, noise_from_velocity, x0_from_velocity


def cps_angles(eta: float) -> tuple[float, float]:
    """``(c_η, s_η) = (cos(ηπ/2), sin(ηπ/2))``; ``η=0`` gives exactly ``(1, 0)``."""
    if eta == 0:
        return 1.0, 0.0
    return math.cos(eta * math.pi / 2), math.sin(eta * math.pi / 2)


def cps_kappa(sigma: Any, sigma_next: Any, eta: float) -> Any:
    """Velocity coefficient of the CPS mean (eq. 2.2): ``κ(σ,σ') = −(1−σ')σ + σ'c_η(1−σ)``.

    Works elementwise on floats or tensors. Example (SD3.5, η=0.9): ``κ(1, 0.9) = −0.1``, ``κ(0.5, 0) = −0.5``.
    """
    c, _ = cps_angles(eta)
    return -(1 - sigma_next) * sigma + sigma_next * c * (1 - sigma)


def cps_x_coefficient(sigma_next: Any, eta: float) -> Any:
    """Coefficient of ``x`` in the CPS mean: ``(1−σ') + σ'c_η`` (1 for η=0 or σ'=0)."""
    c, _ = cps_angles(eta)
    return (1 - sigma_next) + sigma_next * c


def cps_std(sigma_next: Any, eta: float) -> Any:
    """Noise std of the CPS step: ``ρ = σ'·s_η`` (0 on the last step and for η=0)."""
    _, s = cps_angles(eta)
    return sigma_next * s


def _as_f32(t: Any, like: Any) -> Any:
    import torch

    if isinstance(t, torch.Tensor):
        return t.to(device=like.device, dtype=torch.float32)
    return float(t)


def cps_step(x: Any, v: Any, sigma: Any, sigma_next: Any, eta: float, noise: Any = None) -> tuple[Any, Any, Any]:
    """One CPS step (eq. 2.1) in fp32.

    Args:
        x: current sample ``[B, ...]`` at level ``sigma`` (any float dtype; computed in fp32).
        v: velocity prediction, same shape as ``x``.
        sigma, sigma_next: floats, 0-d tensors or ``[B]`` tensors (broadcast over the non-batch dims).
        eta: stochasticity η in [0, 1].
        noise: ``z`` with the shape of ``x``; None draws ``torch.randn_like`` (only when the step is stochastic).

    Returns:
        ``(sample, mean, std)``: fp32 ``[B, ...]`` tensors ``x'`` and ``μ``, and ``ρ`` as an fp32 tensor broadcastable
        to ``x`` (0-d for scalar sigmas, ``[B,1,...]`` for ``[B]``). ``η=0`` returns exactly ``x + (σ'−σ)v`` with
        ``std = 0``; where ``σ'=0`` the sample equals the mean ``x − σv``.
    """
    import torch

    x32, v32 = x.float(), v.float()
    s = expand_sigma(_as_f32(sigma, x32), x32)
    s_next = expand_sigma(_as_f32(sigma_next, x32), x32)
    if eta == 0:  # the reference short-circuits to the Euler ODE step; keep it bit-exact
        mean = x32 + (s_next - s) * v32
        return mean, mean, torch.zeros((), dtype=torch.float32, device=x32.device)
    x0_hat = x0_from_velocity(x32, v32, s)
    eps_hat = noise_from_velocity(x32, v32, s)
    c, _ = cps_angles(eta)
    mean = (1 - s_next) * x0_hat + s_next * c * eps_hat
    std = torch.as_tensor(cps_std(s_next, eta), dtype=torch.float32, device=x32.device)
    if not bool(torch.any(std != 0)):
        return mean, mean, std  # deterministic last step: no noise drawn, sample == mean exactly
    if noise is None:
        noise = torch.randn_like(x32)
    return mean + std * noise.to(device=x32.device, dtype=torch.float32), mean, std


def cps_log_prob(sample: Any, mean: Any, std: Any, kind: str = "simplified") -> Any:
    """Per-sample log-probability of a CPS transition, ``[B]`` fp32.

    Args:
        sample, mean: ``[B, ...]`` (``x'`` and ``μ`` from ``cps_step``).
        std: ``ρ``, broadcastable to ``sample``.
        kind: ``"simplified"`` (eq. 2.3, the reference's default): ``−mean_{non-batch}((x'−μ)²)``; exactly 0 on the
            deterministic last step. ``"gaussian"``: the normalised density summed over elements,
            ``Σ −(x'−μ)²/(2ρ²) − log ρ − ½log 2π``; elements with ``ρ = 0`` (deterministic) contribute 0.
    """
    import torch

    diff = sample.float() - mean.float()
    dims = tuple(range(1, diff.ndim))
    if kind == "simplified":
        return -(diff**2).mean(dim=dims) if dims else -(diff**2)
    if kind != "gaussian":
        raise ValueError(f"unknown log-prob kind {kind!r}; expected 'simplified' or 'gaussian'")
    rho = torch.as_tensor(std, dtype=torch.float32, device=diff.device).expand_as(diff)
    safe = torch.where(rho > 0, rho, torch.ones_like(rho))
    elem = -(diff**2) / (2 * safe**2) - torch.log(safe) - 0.5 * math.log(2 * math.pi)
    elem = torch.where(rho > 0, elem, torch.zeros_like(elem))
    return elem.sum(dim=dims) if dims else elem


@dataclass
class CPSStepRecord:
    """One executed step of ``cps_rollout``: input ``x`` at ``sigmas[k]``, velocity ``v``, CPS output ``sample``
    with its ``mean`` and ``std`` (eq. 2.1; fp32 ``[B, ...]``, ``std`` broadcastable)."""

    k: int
    x: Any
    v: Any
    sample: Any
    mean: Any
    std: Any


def cps_rollout(x: Any, velocity_fn: Callable[[Any, Any, int], Any], sigmas: Sequence[Any], eta: float,
                noise_fn: Callable[[int], Any] | None = None, *, stop: int | None = None,
                grad: Callable[[int], bool] | None = None, carry: Callable[[CPSStepRecord], Any] | None = None,
                on_step: Callable[[CPSStepRecord], None] | None = None) -> Any:
    """THE few-step sampling loop: CPS steps (eq. 2.1) from ``x`` at ``sigmas[0]`` (generation, stage-1 random-stop
    rollouts, stage-2 rollouts with log-probs, the reparameterised x̂0 chain and the toy all run it).

    Args:
        x: initial sample ``[B, ...]`` (pure noise when ``sigmas[0] == 1``).
        velocity_fn: ``(x_k, sigmas[k], k) -> v_k`` (the model call; it chooses its own dtype and σ layout).
        sigmas: N+1 levels ending at 0 (``flow.with_terminal_zero``): floats, a 1-D fp32 tensor, or per-sample
            ``[B]`` level tensors; ``sigmas[k]`` is passed as given to ``velocity_fn`` and ``cps_step``.
        eta: CPS η.
        noise_fn: ``k -> z_k`` for the stochastic steps (``η ≠ 0`` and ``σ_{k+1} ≠ 0``); None -> ``randn_like``.
        stop: run steps ``0..stop−1`` only (random stop, §2.3); default all N.
        grad: ``k -> bool``: grad mode of step k (default: the caller's mode for every step).
        carry: ``record -> x_{k+1}`` (default ``record.sample``): cast to the model dtype (generation) or
            reparameterise a stored transition (x̂0 chain).
        on_step: called with every ``CPSStepRecord`` (collect log-probs, trajectories).

    Returns:
        The sample after the last executed step (``x̂0`` of step N−1 when the levels end at 0), as ``carry`` left it.
    """
    import torch

    n = len(sigmas) - 1 if stop is None else stop
    if not 1 <= n <= len(sigmas) - 1:
        raise ValueError(f"stop must be in 1..{len(sigmas) - 1}, got {stop}")
    for k in range(n):
        with torch.set_grad_enabled(grad(k)) if grad is not None else nullcontext():
            v = velocity_fn(x, sigmas[k], k)
            stochastic = eta != 0 and bool(torch.any(torch.as_tensor(sigmas[k + 1]) != 0))
            z = noise_fn(k) if (stochastic and noise_fn is not None) else None
            sample, mean, std = cps_step(x, v, sigmas[k], sigmas[k + 1], eta, z)
        record = CPSStepRecord(k, x, v, sample, mean, std)
        if on_step is not None:
            on_step(record)
        x = carry(record) if carry is not None else sample
    return x
