"""The toy world: a Gaussian mixture whose rectified-flow teacher is exact (issue 6; d dimensions, issue 15).

Data ``p(x0) = Σ_k w_k N(x0; m_k, S_k)`` in d dimensions (the ring of modes lives in the first two coordinates;
the other d − 2 are independent Gaussian detail of the same std within every mode). Under ``x_σ = (1−σ)x0 + σε`` (ALGORITHM.md eq. 1.1) every marginal
is again a mixture, ``p_σ(x) = Σ_k w_k N(x; (1−σ)m_k, C_k)`` with ``C_k = (1−σ)²S_k + σ²I``, and the teacher
velocity ``v*(x, σ) = E[ε − x0 | x_σ = x]`` is closed-form: with ``r_k = x − (1−σ)m_k`` and responsibilities
``γ_k(x) ∝ w_k N(x; (1−σ)m_k, C_k)``,

    E[ε  | x, k] = σ C_k⁻¹ r_k
    E[x0 | x, k] = m_k + (1−σ) S_k C_k⁻¹ r_k
    v*(x, σ)     = Σ_k γ_k(x) (E[ε | x, k] − E[x0 | x, k])

which is finite at σ = 0 (``v* = −x``, because E[ε|x0] = 0). Computation is float64 for the posterior; when
every ``S_k`` is diagonal (the d-dimensional world) the same formulas run per coordinate, without d×d inverses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class WorldConfig:
    """Ring mixture: ``n_modes`` means on a circle of ``radius`` in the first two of ``dim`` coordinates (0 in the
    others), isotropic std ``mode_std`` in every coordinate, and weights ``∝ 1 + weight_ramp·k/(n_modes−1)``
    (unequal by default so mode-weight errors are visible). ``weights``/``means`` override the ring when given
    (lists; means of length ≤ ``dim``, padded with zeros)."""

    n_modes: int = 8
    radius: float = 2.0
    mode_std: float = 0.25
    weight_ramp: float = 3.0
    means: tuple[tuple[float, ...], ...] | None = None
    weights: tuple[float, ...] | None = None
    dim: int = 2


@dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture in d dims: ``weights [K]`` (sum 1), ``means [K, d]``, ``covs [K, d, d]`` (float64)."""

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact samples ``[n, d]`` (float32): component by multinomial, then ``m_k + L_k z``."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.covs)  # [K, d, d]
        x = torch.empty_like(z)
        for j in range(len(self.weights)):  # per component: no [n, d, d] gather (d = 128 in the dimension sweep)
            rows = k == j
            x[rows] = self.means[j] + z[rows] @ chol[j].T
        return x.float()

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log w_k + log N(x; m_k, S_k)``, shape ``[n, K]`` (float64)."""
        return torch.log(self.weights) + _gauss_logpdf(x.double(), self.means, self.covs)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)``, ``[n]`` float64."""
        return torch.logsumexp(self.component_log_prob(x), dim=1)

    def project(self, k: int = 2) -> Mixture:
        """The exact marginal mixture of the first ``k`` coordinates (same weights; means and covariance blocks)."""
        return Mixture(self.weights, self.means[:, :k], self.covs[:, :k, :k])

    def diagonal(self) -> bool:
        """Whether every component covariance is diagonal (the per-coordinate fast path applies)."""
        return bool(torch.equal(self.covs, torch.diag_embed(torch.diagonal(self.covs, dim1=-2, dim2=-1))))

    def marginal(self, sigma: float) -> Mixture:
        """The mixture of ``x_σ = (1−σ)x0 + σε``: means ``(1−σ)m_k``, covariances ``(1−σ)²S_k + σ²I``."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        return Mixture(self.weights, (1 - sigma) * self.means, (1 - sigma) ** 2 * self.covs + sigma**2 * eye)


def _gauss_logpdf(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> torch.Tensor:
    """``log N(x_n; m_k, S_k)`` for ``x [n, d]``, ``means [K, d]``, ``covs [K, d, d]`` -> ``[n, K]``."""
    d = x.shape[1]
    diff = x[:, None, :] - means[None]  # [n, K, d]
    prec = torch.linalg.inv(covs)  # [K, d, d]
    maha = torch.einsum("nki,kij,nkj->nk", diff, prec, diff)
    logdet = torch.logdet(covs)  # [K]
    return -0.5 * (maha + logdet + d * LOG_2PI)


def make_mixture(cfg: WorldConfig) -> Mixture:
    """Build the data mixture from a config (float64)."""
    if cfg.means is not None:
        means = torch.tensor(cfg.means, dtype=torch.float64)
    else:
        ang = torch.arange(cfg.n_modes, dtype=torch.float64) * 2 * math.pi / cfg.n_modes
        means = cfg.radius * torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)
    if means.shape[1] > cfg.dim:
        raise ValueError(f"world means have {means.shape[1]} coordinates but dim={cfg.dim}")
    means = torch.nn.functional.pad(means, (0, cfg.dim - means.shape[1]))
    k = means.shape[0]
    if cfg.weights is not None:
        w = torch.tensor(cfg.weights, dtype=torch.float64)
    else:
        w = 1 + cfg.weight_ramp * torch.arange(k, dtype=torch.float64) / max(k - 1, 1)
    covs = (cfg.mode_std**2) * torch.eye(cfg.dim, dtype=torch.float64).expand(k, cfg.dim, cfg.dim).clone()
    return Mixture(w / w.sum(), means, covs)


def teacher_velocity(mix: Mixture, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Exact ``v*(x, σ) = E[ε − x0 | x_σ = x]`` for ``x [n, d]``; ``sigma`` a float or ``[n]`` tensor.

    Returns ``[n, d]`` in the dtype of ``x`` (computed in float64). Formula in the module docstring.
    """
    xd = x.detach().double()
    n, d = xd.shape
    if mix.diagonal():
        return _teacher_velocity_diagonal(mix, xd, sigma).to(x.dtype)
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1, 1).expand(n, 1, 1, 1)  # [n,1,1,1]
    eye = torch.eye(d, dtype=torch.float64)
    covs = (1 - s) ** 2 * mix.covs[None] + s**2 * eye  # [n, K, d, d]
    prec = torch.linalg.inv(covs)
    r = xd[:, None, :] - (1 - s[..., 0]) * mix.means[None]  # [n, K, d]
    prec_r = torch.einsum("nkij,nkj->nki", prec, r)
    maha = (r * prec_r).sum(-1)
    log_resp = torch.log(mix.weights) - 0.5 * (maha + torch.logdet(covs))  # [n, K]; constants cancel
    resp = torch.softmax(log_resp, dim=1)
    s2 = s[..., 0]  # [n,1,1]
    e_eps = s2 * prec_r  # σ C⁻¹ r
    e_x0 = mix.means[None] + (1 - s2) * torch.einsum("kij,nkj->nki", mix.covs, prec_r)
    v = (resp[..., None] * (e_eps - e_x0)).sum(1)
    return v.to(x.dtype)


def _teacher_velocity_diagonal(mix: Mixture, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """``teacher_velocity`` for diagonal ``S_k = diag(s_k)``: ``C_k = (1−σ)²s_k + σ²`` per coordinate. ``[n, d]``."""
    n = x.shape[0]
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1).expand(n, 1, 1)  # [n,1,1]
    var = torch.diagonal(mix.covs, dim1=-2, dim2=-1)[None]  # [1, K, d]
    c = (1 - s) ** 2 * var + s**2  # [n, K, d]
    r = x[:, None, :] - (1 - s) * mix.means[None]  # [n, K, d]
    prec_r = r / c
    log_resp = torch.log(mix.weights) - 0.5 * ((r * prec_r).sum(-1) + torch.log(c).sum(-1))
    resp = torch.softmax(log_resp, dim=1)
    e_eps = s * prec_r
    e_x0 = mix.means[None] + (1 - s) * var * prec_r
    return (resp[..., None] * (e_eps - e_x0)).sum(1)


def nearest_mode(means: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Index of the nearest mean for each row of ``x [n, d]`` -> ``[n]`` long (Voronoi assignment)."""
    return torch.cdist(x.double(), means.double()).argmin(dim=1)
