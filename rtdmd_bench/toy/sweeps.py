"""Sweeps of the toy benchmark (issue 15); each writes its own JSON and figure.

* ``beta``: the calibrated mode (``rtdmd_calibrated``, ``aux.tilt_beta``) for β ∈ ``BETAS`` and both rewards,
  against the acceptance criteria ``CRITERIA`` (on the mean over seeds; per-seed values are kept).
* ``dim``: the paper-weight RTDMD (``rtdmd``) in d ∈ ``DIMS`` dimensions at reward scales ``SCALES`` (the reward
  acts on the ring plane; ``scale`` multiplies it): the measured β_eff, the fitted law
  ``log β_eff = a + b·log d + c·log scale`` with a bootstrap over seeds, its reading in units of the reward's
  std under p (``β·σ_R``, the unit standardised advantages see) and what it implies at the image latents'
  dimension; and the β-meter (``beta_meter/state`` and ``beta_meter/update`` of ``metrics.jsonl``, means over the
  last ``METER_EPOCHS`` epochs) against the measured β_eff, with the calibrated runs of the ``beta`` sweep (whose
  update reading is their β) as a second group.

Both sweeps train every seed's stage 1 once (``bench.SeedRun``) and run the recipes themselves.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import torch

from rtdmd_bench.toy import bench
from rtdmd_bench.toy.nets import generate

BETAS = (0.5, 1.0, 2.0)
DIMS = (2, 8, 32, 128)
SCALES = (1.0, 4.0)
CRITERIA = {"mmd_over_floor": 2.0, "mode_tv_tilted": 0.05, "beta_rel_error": 0.15}
METER_EPOCHS = 20  # the β-meter of a run: mean of its last epochs
BETA_MAX = 100.0  # effective_beta search range of the dim sweep (the paper weights tilt far)
# latent elements per sample at the stage-2 training resolution 512² (ALGORITHM.md §1.5: SD3/SD3.5 and FLUX.1:
# 16 channels at res/8; FLUX.2-klein: 128 channels at res/16)
IMAGE_LATENT_DIMS = {"sd35m": 16 * 64 * 64, "flux1-dev": 16 * 64 * 64, "flux2-klein": 128 * 32 * 32}

Log = Callable[[str], None]


def _evaluate(world: bench.World, net, steps, eta, seed: int, beta_max: float = 30.0) -> dict[str, float]:
    g = torch.Generator().manual_seed(10_000 + seed)
    x = generate(net, world.cfg.n_eval, g, steps, eta)
    out = world.evaluate(x, g, beta_max=beta_max)
    out["mmd_over_floor"] = out["mmd_tilted"] / world.floors()["mmd_tilted"]
    return out


def meter_reading(rows: Sequence[dict], key: str = "beta_meter/state", epochs: int = METER_EPOCHS) -> float:
    """Mean of ``key`` over the last ``epochs`` rows of a stage-2 ``metrics.jsonl`` (NaN if absent)."""
    vals = [r[key] for r in rows[-epochs:] if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def _stats(values: Sequence[float]) -> dict:
    t = torch.tensor(values, dtype=torch.float64)
    std = float(t.std(unbiased=True)) if len(values) > 1 else 0.0
    return {"mean": float(t.mean()), "std": std if math.isfinite(std) else 0.0, "seeds": list(values)}


# ---------------------------------------------------------------------------------------------- β sweep
def beta_sweep(base: bench.BenchConfig, betas: Sequence[float] = BETAS, rewards: Sequence[str] = tuple(bench.REWARDS),
               seeds: int = 3, log: Log = lambda s: None) -> dict:
    """The calibrated mode over ``rewards`` × ``betas`` × ``seeds``.

    Returns the JSON document ``{"config", "criteria", "cells": {reward: {β: {"metrics": {metric: stats},
    "floor": MMD floor of p̃, "exact_reward": E_p̃[r], "pass": {criterion: bool}}}}, "control", "seconds"}``;
    ``control`` is the same recipe at β = 0 (DM only) against p.
    """
    t0 = time.perf_counter()
    worlds = {(k, b): bench.World(dataclasses.replace(base, beta=b, **bench.REWARDS[k])) for k in rewards for b in betas}
    per: dict[tuple[str, float], list[dict]] = {key: [] for key in worlds}
    control_world, control = bench.World(dataclasses.replace(base, beta=0.0)), []
    for seed in range(seeds):
        start = bench.SeedRun(bench.World(base), seed)  # stage 1 does not depend on the reward or β
        # the same recipe at β = 0 (DM only, target p): how close the DM machinery itself gets
        net, steps, eta, _ = start.train("rtdmd_calibrated", control_world)
        control.append(_evaluate(control_world, net, steps, eta, seed))
        log(f"beta sweep seed {seed} DM-only control: " + " ".join(f"{k}={v:.3g}" for k, v in control[-1].items()))
        for (kind, beta), world in worlds.items():
            net, steps, eta, rows = start.train("rtdmd_calibrated", world)
            m = _evaluate(world, net, steps, eta, seed)
            m["beta_rel_error"] = abs(m["effective_beta"] - beta) / beta
            m["meter_beta"] = meter_reading(rows, "beta_meter/update")
            m["tilt_ess_frac"] = sum(r.get("tilt/ess_frac") or 0.0 for r in rows[-METER_EPOCHS:]) / METER_EPOCHS
            per[(kind, beta)].append(m)
            log(f"beta sweep seed {seed} {kind} beta={beta}: " + " ".join(f"{k}={v:.3g}" for k, v in m.items()))
    cells: dict = {}
    for (kind, beta), runs in per.items():
        stats = {k: _stats([r[k] for r in runs]) for k in runs[0]}
        world = worlds[(kind, beta)]
        cells.setdefault(kind, {})[str(beta)] = {
            "metrics": stats, "floor": world.floors()["mmd_tilted"],
            "exact_reward": world.reward.expected(world.tilted),
            "pass": {c: stats[c]["mean"] <= limit for c, limit in CRITERIA.items()}}
    return {"config": bench.config_dict(base), "criteria": CRITERIA, "betas": list(betas), "cells": cells,
            "control": {k: _stats([r[k] for r in control]) for k in control[0]}, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------------- d sweep
def reward_std(world: bench.World, n: int = 50_000, seed: int = 7) -> float:
    """Std of the reward under p (Monte Carlo on exact samples): the unit of standardised advantages."""
    x = world.data.sample(n, torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():
        return float(world.reward(x).std())


def fixed_point_ess_frac(world: bench.World, n: int = 200_000, seed: int = 7) -> float:
    """ESS/N of the calibrated weights ``e^{−βR}`` at the fixed point q = p̃ (``losses.tilt``):
    ``1/(E_p[e^{−βR}]·E_p[e^{βR}])`` (Monte Carlo on exact samples of p). Times the epoch's rollouts N it is how
    many samples the fake score effectively learns q·e^{−βR} from once the run has arrived."""
    x = world.data.sample(n, torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():
        r = world.reward(x).double() * world.cfg.beta
    return float(1.0 / (torch.exp(-r).mean() * torch.exp(r).mean()))


def dim_sweep(base: bench.BenchConfig, dims: Sequence[int] = DIMS, scales: Sequence[float] = SCALES, seeds: int = 3,
              method: str = "rtdmd", log: Log = lambda s: None) -> dict:
    """``method`` (paper weights by default) over ``dims`` × ``scales`` × ``seeds``; stage 1 (AC-DMD) as baseline.

    Returns ``{"config", "points": [{"dim", "scale", "seed", "beta_eff", "meter_beta" (state reading),
    "meter_update", "sigma_r", ...}],
    "stage1": [{"dim", "seed", "effective_beta", "mmd_over_floor"}], "fit", "meter", "seconds"}``.
    """
    t0 = time.perf_counter()
    points, stage1 = [], []
    for d in dims:
        cfg_d = dataclasses.replace(base, world=dataclasses.replace(base.world, dim=d))
        worlds = {c: bench.World(dataclasses.replace(
            cfg_d, reward_params={**cfg_d.reward_params, "scale": c})) for c in scales}
        sigma = {c: reward_std(w) for c, w in worlds.items()}
        for seed in range(seeds):
            start = bench.SeedRun(worlds[scales[0]], seed)
            net, steps, eta, _ = start.train("ac_dmd")
            s1 = _evaluate(worlds[scales[0]], net, steps, eta, seed, BETA_MAX)
            stage1.append({"dim": d, "seed": seed, **s1})
            for c, world in worlds.items():
                net, steps, eta, rows = start.train(method, world)
                m = _evaluate(world, net, steps, eta, seed, BETA_MAX)
                points.append({"dim": d, "scale": c, "seed": seed, "sigma_r": sigma[c],
                               "beta_eff": m["effective_beta"], "meter_beta": meter_reading(rows),
                               "meter_update": meter_reading(rows, "beta_meter/update"), **m})
                log(f"dim sweep d={d} scale={c} seed {seed}: beta_eff={m['effective_beta']:.3g} "
                    f"meter state={points[-1]['meter_beta']:.3g} update={points[-1]['meter_update']:.3g} "
                    f"mmd/floor={m['mmd_over_floor']:.3g}")
    return {"config": bench.config_dict(base), "method": method, "dims": list(dims), "scales": list(scales),
            "points": points, "stage1": stage1, "fit": fit_law(points, seeds),
            "meter": meter_validation([(p["meter_beta"], p["beta_eff"]) for p in points]),
            "meter_update": meter_validation([(p["meter_update"], p["beta_eff"]) for p in points]),
            "seconds": time.perf_counter() - t0}


def _lstsq(rows: Sequence[dict], target: Callable[[dict], float]) -> tuple[list[float], float]:
    """Least squares ``target = a + b·log d + c·log scale`` -> ``([a, b, c], residual std)``."""
    x = torch.tensor([[1.0, math.log(r["dim"]), math.log(r["scale"])] for r in rows], dtype=torch.float64)
    y = torch.tensor([target(r) for r in rows], dtype=torch.float64)
    coef = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
    resid = y - x @ coef
    dof = max(len(rows) - 3, 1)
    return coef.tolist(), float((resid.pow(2).sum() / dof).sqrt())


def fit_law(points: Sequence[dict], seeds: int, n_boot: int = 2000, seed: int = 0) -> dict:
    """Fit ``log β_eff`` and ``log(β_eff·σ_R)`` on log d and log scale; bootstrap the seeds of every cell.

    Returns ``{"beta": {"coef", "ci", "resid_std"}, "beta_sigma": {...}, "image": {model: {"dim", "beta_sigma":
    {"median", "lo", "hi"}}}}`` (95% percentile intervals; the image rows extrapolate ``β·σ_R`` to the latent size
    at scale 1: divide by the image reward's std under the teacher to get β).
    """
    pts = [p for p in points if p["beta_eff"] > 0]
    if len({p["dim"] for p in pts}) < 2 or len({p["scale"] for p in pts}) < 2:
        return {}
    targets = {"beta": lambda r: math.log(r["beta_eff"]),
               "beta_sigma": lambda r: math.log(r["beta_eff"] * r["sigma_r"])}
    cells: dict[tuple, list[dict]] = {}
    for p in pts:
        cells.setdefault((p["dim"], p["scale"]), []).append(p)
    g = torch.Generator().manual_seed(seed)
    out: dict = {}
    for name, tgt in targets.items():
        coef, resid = _lstsq(pts, tgt)
        boots = []
        for _ in range(n_boot):
            sample = [rows[i] for rows in cells.values()
                      for i in torch.randint(len(rows), (len(rows),), generator=g).tolist()]
            boots.append(_lstsq(sample, tgt)[0])
        b = torch.tensor(boots, dtype=torch.float64)
        ci = [[float(b[:, j].quantile(0.025)), float(b[:, j].quantile(0.975))] for j in range(3)]
        out[name] = {"coef": coef, "ci": ci, "resid_std": resid, "boot": b}
    image = {}
    bs = out["beta_sigma"]
    for model, dim in IMAGE_LATENT_DIMS.items():
        preds = (bs["boot"][:, 0] + bs["boot"][:, 1] * math.log(dim)).exp()
        image[model] = {"dim": dim, "beta_sigma": {"median": float(preds.median()), "lo": float(preds.quantile(0.025)),
                                                   "hi": float(preds.quantile(0.975)),
                                                   "point": math.exp(bs["coef"][0] + bs["coef"][1] * math.log(dim))}}
    for v in out.values():
        v.pop("boot")
    out["image"] = image
    return out


def meter_validation(pairs: Sequence[tuple[float, float]]) -> dict:
    """β-meter vs measured β_eff over ``(meter, measured)`` pairs with both > 0: Pearson correlation of the logs,
    and the median and maximum error factor ``exp|log(meter/measured)|``."""
    ok = [(a, b) for a, b in pairs if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    if len(ok) < 3:
        return {"n": len(ok)}
    la = torch.tensor([math.log(a) for a, _ in ok], dtype=torch.float64)
    lb = torch.tensor([math.log(b) for _, b in ok], dtype=torch.float64)
    corr = float(torch.corrcoef(torch.stack([la, lb]))[0, 1])
    err = (la - lb).abs().exp()
    return {"n": len(ok), "log_corr": corr, "median_factor": float(err.median()), "max_factor": float(err.max()),
            "mean_log_ratio": float((la - lb).mean())}


# ---------------------------------------------------------------------------------------------- figures
def plot_dim(doc: dict, path: str, beta_doc: dict | None = None) -> None:
    """Left: β_eff·σ_R against d per scale with the fitted law; right: β-meter against measured β_eff."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    fit = doc.get("fit", {}).get("beta_sigma")
    for c in doc["scales"]:
        pts = [p for p in doc["points"] if p["scale"] == c]
        ax.scatter([p["dim"] for p in pts], [p["beta_eff"] * p["sigma_r"] for p in pts], s=14, label=f"scale {c:g}")
    if fit:
        ds = torch.logspace(math.log10(min(doc["dims"])), math.log10(max(doc["dims"])), 50)
        ax.plot(ds, [math.exp(fit["coef"][0] + fit["coef"][1] * math.log(d)) for d in ds.tolist()], "k--",
                label=f"fit: d^{fit['coef'][1]:.2f}")
    ax.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="beta_eff x sigma_R(p)",
           title=f"{doc['method']}: tilt vs dimension")
    ax.legend(fontsize=8)
    pairs = [(p["meter_beta"], p["beta_eff"]) for p in doc["points"]]
    bx.scatter([b for _, b in pairs], [a for a, _ in pairs], s=14, label=f"{doc['method']} (d sweep)")
    if beta_doc:
        cal = [(meter, measured) for k in beta_doc["cells"].values() for cell in k.values()
               for meter, measured in zip(cell["metrics"]["meter_beta"]["seeds"],
                                          cell["metrics"]["effective_beta"]["seeds"])]
        bx.scatter([b for _, b in cal], [a for a, _ in cal], s=14, marker="x", label="calibrated (beta sweep)")
    lo = min([v for p in pairs for v in p if v > 0] + [0.1])
    hi = max([v for p in pairs for v in p if math.isfinite(v)] + [3.0])
    bx.plot([lo, hi], [lo, hi], "k:", lw=0.8)
    bx.set(xscale="log", yscale="log", xlabel="measured beta_eff", ylabel="beta-meter estimate",
           title="beta-meter vs measured")
    bx.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_beta(doc: dict, path: str) -> None:
    """Per reward: measured β_eff against the β asked for (±15% band) and MMD to p̃ over its floor (2× line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    betas = doc["betas"]
    ax.fill_between(betas, [0.85 * b for b in betas], [1.15 * b for b in betas], color="0.85", label="±15%")
    ax.plot(betas, betas, "k:", lw=0.8)
    for i, (kind, cells) in enumerate(doc["cells"].items()):
        for b, cell in cells.items():
            seeds = cell["metrics"]["effective_beta"]["seeds"]
            ax.scatter([float(b)] * len(seeds), seeds, s=14, color=f"C{i}", label=kind if b == str(betas[0]) else None)
            mm = cell["metrics"]["mmd_over_floor"]["seeds"]
            bx.scatter([float(b) * (1.04 if i else 0.96)] * len(mm), mm, s=14, color=f"C{i}",
                       label=kind if b == str(betas[0]) else None)
    bx.axhline(CRITERIA["mmd_over_floor"], color="k", ls=":", lw=0.8)
    ax.set(xlabel="beta asked (aux.tilt_beta)", ylabel="measured beta_eff", title="calibrated mode: beta_eff")
    bx.set(xlabel="beta asked", ylabel="MMD(p~) / noise floor", title="calibrated mode: distance to p~")
    ax.legend(fontsize=8)
    bx.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(doc: dict) -> str:
    """Plain-text summary of a sweep document (the CLI prints it)."""
    lines = []
    if "cells" in doc:
        for kind, cells in doc["cells"].items():
            for b, cell in cells.items():
                m = cell["metrics"]
                lines.append(f"{kind} beta={b}: beta_eff {m['effective_beta']['mean']:.3f} ± "
                             f"{m['effective_beta']['std']:.3f}, MMD/floor {m['mmd_over_floor']['mean']:.2f}, mode TV "
                             f"{m['mode_tv_tilted']['mean']:.3f}; pass "
                             + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in cell["pass"].items()))
    else:
        for d in doc["dims"]:
            for c in doc["scales"]:
                pts = [p for p in doc["points"] if p["dim"] == d and p["scale"] == c]
                be = [p["beta_eff"] for p in pts]
                me = [p["meter_beta"] for p in pts]
                lines.append(f"d={d} scale={c:g}: beta_eff {sum(be) / len(be):.3g} (seeds {', '.join(f'{v:.3g}' for v in be)})"
                             f", beta-meter {sum(me) / len(me):.3g}")
        fit = doc.get("fit", {}).get("beta")
        if fit:
            lines.append(f"fit: log beta_eff = {fit['coef'][0]:.3f} + {fit['coef'][1]:.3f} log d + {fit['coef'][2]:.3f} "
                         f"log scale (95% CI of the d exponent {fit['ci'][1][0]:.3f}..{fit['ci'][1][1]:.3f})")
    lines.append(f"{doc['seconds']:.0f} s")
    return "\n".join(lines)
