"""Toy rewards with a closed-form tilted target ``p̃ ∝ p·exp(β r)`` (ALGORITHM.md eq. 5.1).

Both rewards are quadratic-or-linear in x, so multiplying a Gaussian component ``N(m, S)`` by ``exp(β r)`` gives
another Gaussian times a constant ``Z``; the tilted target is again a mixture with weights ``∝ w_k Z_k``:

* Gaussian bump ``r(x) = −|x − c|²/(2l²)``, ``a = β/l²``:
  ``S' = (S⁻¹ + aI)⁻¹``, ``m' = S'(S⁻¹m + a c)``, ``log Z = −½ log det(I + aS) − (a/2)(m−c)ᵀ(I + aS)⁻¹(m−c)``.
  Valid while ``I + aS`` is positive definite (any β ≥ 0, and β > −l²/λ_max(S)).
* Linear ``r(x) = a·x``: ``S' = S``, ``m' = m + βSa``, ``log Z = β a·m + (β²/2) aᵀSa`` (any β).

The reward callables are differentiable torch functions of ``x [n, 2]`` returning ``[n]`` (the BP term needs
the gradient); the ``tilt`` methods are float64 and exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rtdmd_bench.toy.world import Mixture


@dataclass(frozen=True)
class BumpReward:
    """``r(x) = −|x − c|²/(2 l²)``; ``center`` (cx, cy), ``length`` l."""

    center: tuple[float, float] = (0.0, 2.0)
    length: float = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, 2] -> [n]`` (differentiable)."""
        c = torch.as_tensor(self.center, dtype=x.dtype, device=x.device)
        return -((x - c) ** 2).sum(-1) / (2 * self.length**2)

    def tilt(self, mix: Mixture, beta: float) -> Mixture:
        """Exact ``p̃ ∝ p·exp(β r)`` as a mixture (float64)."""
        a = beta / self.length**2
        eye = torch.eye(mix.dim, dtype=torch.float64)
        c = torch.tensor(self.center, dtype=torch.float64)
        m_a = eye + a * mix.covs  # [K, d, d]  I + aS
        if bool((torch.linalg.eigvalsh(m_a) <= 0).any()):
            raise ValueError(f"beta={beta} makes I + (beta/l^2) S indefinite: the tilted density is not normalisable")
        covs = torch.linalg.solve(m_a, mix.covs)  # (I + aS)⁻¹ S = (S⁻¹ + aI)⁻¹
        rhs = torch.linalg.solve(mix.covs, mix.means[..., None])[..., 0] + a * c  # S⁻¹m + a c
        means = torch.einsum("kij,kj->ki", covs, rhs)
        diff = mix.means - c
        quad = torch.einsum("ki,ki->k", diff, torch.linalg.solve(m_a, diff[..., None])[..., 0])
        log_z = -0.5 * torch.logdet(m_a) - 0.5 * a * quad
        return Mixture(_renormalise(mix.weights, log_z), means, covs)

    def expected(self, mix: Mixture) -> float:
        """Exact ``E_mix[r] = −Σ_k w_k (|m_k − c|² + tr S_k)/(2l²)``."""
        c = torch.tensor(self.center, dtype=torch.float64)
        per = ((mix.means - c) ** 2).sum(-1) + torch.diagonal(mix.covs, dim1=-2, dim2=-1).sum(-1)
        return float(-(mix.weights * per).sum() / (2 * self.length**2))

    def min_beta(self, mix: Mixture) -> float:
        """Smallest β for which the tilt is normalisable (exclusive bound): ``−l²/λ_max(S)``."""
        return float(-self.length**2 / torch.linalg.eigvalsh(mix.covs).max())


@dataclass(frozen=True)
class LinearReward:
    """``r(x) = a·x``; ``direction`` a."""

    direction: tuple[float, float] = (0.0, 1.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, 2] -> [n]`` (differentiable)."""
        return x @ torch.as_tensor(self.direction, dtype=x.dtype, device=x.device)

    def tilt(self, mix: Mixture, beta: float) -> Mixture:
        """Exact tilt: each component shifted by ``β S a``, weights ``∝ w exp(β a·m + β² aᵀSa/2)``."""
        a = torch.tensor(self.direction, dtype=torch.float64)
        sa = mix.covs @ a  # [K, d]
        log_z = beta * (mix.means @ a) + 0.5 * beta**2 * (sa @ a)
        return Mixture(_renormalise(mix.weights, log_z), mix.means + beta * sa, mix.covs.clone())

    def expected(self, mix: Mixture) -> float:
        """Exact ``E_mix[r] = Σ_k w_k a·m_k``."""
        a = torch.tensor(self.direction, dtype=torch.float64)
        return float((mix.weights * (mix.means @ a)).sum())

    def min_beta(self, mix: Mixture) -> float:
        return float("-inf")


def _renormalise(weights: torch.Tensor, log_z: torch.Tensor) -> torch.Tensor:
    """``w_k Z_k / Σ_j w_j Z_j`` computed in log space."""
    return torch.softmax(torch.log(weights) + log_z, dim=0)


def make_reward(kind: str, **kwargs) -> BumpReward | LinearReward:
    """``"bump"`` or ``"linear"`` with its dataclass fields as keyword arguments (tuples for vectors)."""
    kinds = {"bump": BumpReward, "linear": LinearReward}
    if kind not in kinds:
        raise ValueError(f"unknown toy reward {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
