"""Toy rewards with a closed-form tilted target ``p̃ ∝ p·exp(β r)`` (ALGORITHM.md eq. 5.1), in d dimensions.

Both rewards are quadratic-or-linear in x, so multiplying a Gaussian component ``N(m, S)`` by ``exp(β r)`` gives
another Gaussian times a constant ``Z``; the tilted target is again a mixture with weights ``∝ w_k Z_k``. A reward
acts on the first ``p`` coordinates through the selector ``P = [I_p 0]`` (``p = len(center)`` or
``len(direction)``, the ring plane by default) or, for the bump with ``coords="all"``, on all of them (``P = I``,
the center padded with zeros). ``scale`` multiplies the reward, so the tilt at β with scale c is the tilt at βc.

* Gaussian bump ``r(x) = −c·|Px − μ|²/(2l²)``, ``a = βc/l²``, with ``M = I_p + a P S Pᵀ``:
  ``S' = S − a S Pᵀ M⁻¹ P S`` (= ``(S⁻¹ + a PᵀP)⁻¹``, Woodbury), ``m' = m + a S' Pᵀ(μ − Pm)``,
  ``log Z = −½ log det M − (a/2)(Pm − μ)ᵀ M⁻¹ (Pm − μ)``. Valid while ``M`` is positive definite (any β ≥ 0).
* Linear ``r(x) = c·a·x``: ``S' = S``, ``m' = m + βc·S a``, ``log Z = βc·a·m + (βc)²/2 aᵀSa`` (any β).

The reward callables are differentiable torch functions of ``x [n, d]`` returning ``[n]`` (the BP term needs the
gradient); the ``tilt`` methods are float64 and exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from rtdmd_bench.toy.world import Mixture


def _pad(v: tuple[float, ...], d: int, what: str) -> torch.Tensor:
    """``v`` as a float64 ``[d]`` vector padded with zeros (error if longer than d)."""
    if len(v) > d:
        raise ValueError(f"toy reward {what} has {len(v)} coordinates but the world has {d}")
    return torch.nn.functional.pad(torch.tensor(v, dtype=torch.float64), (0, d - len(v)))


@dataclass(frozen=True)
class BumpReward:
    """``r(x) = −scale·|Px − center|²/(2·length²)``; ``P`` selects the first ``len(center)`` coordinates
    (``coords="leading"``) or all of them (``coords="all"``, center padded with zeros)."""

    center: tuple[float, ...] = (0.0, 2.0)
    length: float = 1.0
    coords: Literal["leading", "all"] = "leading"
    scale: float = 1.0

    def _selector(self, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(P [p, d], μ [p])`` float64."""
        if self.coords == "all":
            return torch.eye(d, dtype=torch.float64), _pad(self.center, d, "center")
        if self.coords != "leading":
            raise ValueError(f"unknown bump coords {self.coords!r}; expected 'leading' or 'all'")
        p = len(self.center)
        _pad(self.center, d, "center")
        return torch.eye(d, dtype=torch.float64)[:p], torch.tensor(self.center, dtype=torch.float64)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, d] -> [n]`` (differentiable)."""
        sel, mu = self._selector(x.shape[1])
        px = x @ sel.to(x.dtype).T
        return -self.scale * ((px - mu.to(x.dtype)) ** 2).sum(-1) / (2 * self.length**2)

    def tilt(self, mix: Mixture, beta: float) -> Mixture:
        """Exact ``p̃ ∝ p·exp(β r)`` as a mixture (float64; formulas in the module docstring)."""
        a = beta * self.scale / self.length**2
        sel, mu = self._selector(mix.dim)
        ps = torch.einsum("ij,kjl->kil", sel, mix.covs)  # P S   [K, p, d]
        m_a = torch.eye(sel.shape[0], dtype=torch.float64) + a * ps @ sel.T  # I + a P S Pᵀ   [K, p, p]
        if bool((torch.linalg.eigvalsh(m_a) <= 0).any()):
            raise ValueError(f"beta={beta} makes I + (beta/l^2) P S P^T indefinite: the tilted density is not "
                             "normalisable")
        covs = mix.covs - a * ps.transpose(1, 2) @ torch.linalg.solve(m_a, ps)
        diff = mix.means @ sel.T - mu  # Pm − μ   [K, p]
        means = mix.means - a * torch.einsum("kij,jl,kl->ki", covs, sel.T, diff)
        quad = torch.einsum("ki,ki->k", diff, torch.linalg.solve(m_a, diff[..., None])[..., 0])
        log_z = -0.5 * torch.logdet(m_a) - 0.5 * a * quad
        return Mixture(_renormalise(mix.weights, log_z), means, covs)

    def expected(self, mix: Mixture) -> float:
        """Exact ``E_mix[r] = −scale·Σ_k w_k (|P m_k − μ|² + tr P S_k Pᵀ)/(2l²)``."""
        sel, mu = self._selector(mix.dim)
        per = ((mix.means @ sel.T - mu) ** 2).sum(-1) + torch.einsum("ij,kjl,il->k", sel, mix.covs, sel)
        return float(-self.scale * (mix.weights * per).sum() / (2 * self.length**2))

    def min_beta(self, mix: Mixture) -> float:
        """Smallest β for which the tilt is normalisable (exclusive bound): ``−l²/(scale·λ_max(P S Pᵀ))``."""
        sel, _ = self._selector(mix.dim)
        lam = torch.linalg.eigvalsh(torch.einsum("ij,kjl,ml->kim", sel, mix.covs, sel)).max()
        return float(-self.length**2 / (self.scale * lam))


@dataclass(frozen=True)
class LinearReward:
    """``r(x) = scale·a·x``; ``direction`` a (padded with zeros to the world's dimension)."""

    direction: tuple[float, ...] = (0.0, 1.0)
    scale: float = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, d] -> [n]`` (differentiable)."""
        return self.scale * (x @ _pad(self.direction, x.shape[1], "direction").to(x.dtype).to(x.device))

    def tilt(self, mix: Mixture, beta: float) -> Mixture:
        """Exact tilt: each component shifted by ``βc·S a``, weights ``∝ w exp(βc a·m + (βc)² aᵀSa/2)``."""
        b = beta * self.scale
        a = _pad(self.direction, mix.dim, "direction")
        sa = mix.covs @ a  # [K, d]
        log_z = b * (mix.means @ a) + 0.5 * b**2 * (sa @ a)
        return Mixture(_renormalise(mix.weights, log_z), mix.means + b * sa, mix.covs.clone())

    def expected(self, mix: Mixture) -> float:
        """Exact ``E_mix[r] = scale·Σ_k w_k a·m_k``."""
        a = _pad(self.direction, mix.dim, "direction")
        return float(self.scale * (mix.weights * (mix.means @ a)).sum())

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
