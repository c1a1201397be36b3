"""The toy benchmark: train every method on the exact world, score it against p and p̃, aggregate over seeds.

Per seed: pretrain the velocity MLP (generator/fake init, and the imperfect teacher if asked), run stage 1
(AC-DMD) once and start every stage-2 method from its EMA generator and fake score (as the image recipes load
the cold-start checkpoint). ``run`` returns the JSON document

    {"config": ..., "noise_floor": {"mmd_teacher": x, "mmd_tilted": x},
     "methods": {METHOD: {METRIC: {"mean": x, "std": x}}}}

and ``plot`` draws one panel of samples per method over the density contours of p̃.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rtdmd_bench.toy import metrics
from rtdmd_bench.toy.distill import TOY_STAGE1, Stage1Result, train_stage1
from rtdmd_bench.toy.finetune import TOY_STAGE2, calibrated_values, exact_kl_values, train_stage2
from rtdmd_bench.toy.nets import SD35_SIGMAS, ExactTeacher, generate, many_step_sigmas, pretrain
from rtdmd_bench.toy.rewards import make_reward
from rtdmd_bench.toy.world import WorldConfig, make_mixture

PLANE = 2  # the ring of modes lives in the first two coordinates of the world
# the two toy rewards as BenchConfig values: the bump of the default run and a linear reward along the ring's y axis
REWARDS: dict[str, dict[str, Any]] = {
    "bump": {"reward": "bump", "reward_params": {"center": (0.0, 2.0), "length": 1.5}},
    "linear": {"reward": "linear", "reward_params": {"direction": (0.0, 1.0)}},
}
TEACHERS = ("exact", "mlp")  # closed-form velocity | the imperfect pretrained MLP (teacher error + method error)
METRICS = ("mmd_teacher", "mmd_tilted", "energy_tilted", "mode_tv_tilted", "mean_reward", "variance_ratio",
           "effective_beta")

# method -> (kind, recipe, switches): the switches are values of the recipe's own config, set on top of the toy's
# schedule (``BenchConfig.stage1`` / ``stage2``); a callable gets the BenchConfig (β-dependent values)
METHODS: dict[str, tuple[str, str, dict[str, Any] | Callable[[BenchConfig], dict[str, Any]]]] = {
    "teacher": ("teacher", "", {}),
    "ac_dmd": ("stage1", "stage1_acdmd", {}),
    "dmd": ("stage1", "dmd", {}),
    "rtdmd": ("stage2", "stage2_rtdmd", {}),
    "grpo": ("stage2", "grpo", {}),
    "bp": ("stage2", "stage2_rtdmd", {"policy.enabled": False, "aux.loss": "none"}),
    # the paper's ablations (each removes or changes one thing of rtdmd): "w/o SubGRPO" = the GRPO estimator on
    # every stochastic step (no subset, no shared noise); no policy gradient; no reward BP; no DM term; no
    # consistency regulariser of the fake score
    "rtdmd_pg_all_steps": ("stage2", "stage2_rtdmd", {"policy.step_selection": False}),
    "rtdmd_no_pg": ("stage2", "stage2_rtdmd", {"policy.enabled": False}),
    "rtdmd_no_bp": ("stage2", "stage2_rtdmd", {"bp.enabled": False}),
    "rtdmd_no_dm": ("stage2", "stage2_rtdmd", {"aux.loss": "none"}),
    "rtdmd_no_consistency": ("stage2", "stage2_rtdmd", {"aux.consistency.enabled": False}),
    "rtdmd_exact_kl": ("stage2", "stage2_rtdmd", lambda cfg: exact_kl_values(cfg.beta, cfg.exact_t)),
    "rtdmd_calibrated": ("stage2", "stage2_rtdmd",
                         lambda cfg: calibrated_values(cfg.beta, 3 * cfg.stage2["train.steps"] // 2)),
}


def method_values(cfg: BenchConfig, name: str) -> tuple[str, dict[str, Any]]:
    """``(recipe, config values)`` that method ``name`` trains with: the toy schedule plus its switches."""
    kind, recipe, switches = METHODS[name]
    base = cfg.stage1 if kind == "stage1" else cfg.stage2
    return recipe, {**base, **(switches(cfg) if callable(switches) else switches)}


@dataclass(frozen=True)
class BenchConfig:
    """Everything a run depends on (serialised into the JSON)."""

    world: WorldConfig = field(default_factory=WorldConfig)
    reward: str = "bump"
    reward_params: dict = field(default_factory=lambda: {"center": (0.0, 2.0), "length": 1.5})
    beta: float = 1.0  # the β of the tilted target p̃ the metrics compare with (and of the exact-KL mode)
    teacher: str = "exact"  # "exact" (closed form) or "mlp" (the imperfect pretrained MLP)
    hidden: int = 128  # MLP width of generator, fake score and imperfect teacher
    pretrain_steps: int = 3000
    pretrain_lr: float = 5e-3
    teacher_steps: int = 100  # many-step Euler sampler of the teacher row
    sigmas: tuple[float, ...] = SD35_SIGMAS
    eta: float = 0.9
    n_eval: int = 2000
    stage1: dict = field(default_factory=lambda: dict(TOY_STAGE1))  # stage-1 recipe config values
    stage2: dict = field(default_factory=lambda: dict(TOY_STAGE2))  # stage-2 recipe config values
    exact_t: tuple[float, float] = (0.1, 0.5)  # DM levels of the exact-KL mode (λ uniform on this range)


def quick_config() -> BenchConfig:
    """A few seconds per method: for tests and smoke runs (numbers are not converged)."""
    return BenchConfig(pretrain_steps=200, pretrain_lr=2e-3, hidden=64, teacher_steps=40, n_eval=600,
                       stage1={**TOY_STAGE1, "train.steps": 150, "generator_optim.lr": 2e-3, "fake_optim.lr": 2e-3,
                               "ema.decay": 0.99},
                       stage2={**TOY_STAGE2, "train.steps": 15, "sampling.batch_size": 64, "sampling.k": 8,
                               "aux.fake_batch_size": 64, "generator_optim.lr": 1e-3})


def config_dict(cfg: BenchConfig) -> dict:
    """JSON-ready config (tuples become lists)."""
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> BenchConfig:
    """Inverse of ``config_dict`` (a results JSON's ``config``; stage1/stage2 stay dicts)."""
    d = dict(d)
    d["world"] = WorldConfig(**d["world"])
    d["sigmas"] = tuple(d["sigmas"])
    d["exact_t"] = tuple(d["exact_t"])
    return BenchConfig(**d)


class World:
    """The exact objects of one config: data mixture p, reward, tilted target p̃ and the teacher module."""

    def __init__(self, cfg: BenchConfig):
        if cfg.teacher not in TEACHERS:
            raise ValueError(f"unknown toy teacher {cfg.teacher!r}; expected one of {list(TEACHERS)}")
        self.cfg = cfg
        self.data = make_mixture(cfg.world)
        self.reward = make_reward(cfg.reward, **cfg.reward_params)
        self.tilted = self.reward.tilt(self.data, cfg.beta)
        self.exact_teacher = ExactTeacher(self.data)
        self._floors: dict[str, float] | None = None

    def evaluate(self, x: torch.Tensor, g: torch.Generator, beta_max: float = 30.0) -> dict[str, float]:
        """All metrics of samples ``x [n, d]`` (fresh exact reference samples of the same size from ``g``).

        Distances, modes and variances are read on the ring plane (the first two coordinates, against the exact
        marginals of p and p̃ there: every mode lives in it); the mean reward uses all d coordinates.
        ``beta_max``: upper end of the effective-β search.
        """
        n, xp = len(x), x[:, :PLANE]
        data, tilted = self.data.project(PLANE), self.tilted.project(PLANE)
        return {
            "mmd_teacher": metrics.mmd(xp, data.sample(n, g)),
            "mmd_tilted": metrics.mmd(xp, tilted.sample(n, g)),
            "energy_tilted": metrics.energy(xp, tilted.sample(n, g)),
            "mode_tv_tilted": metrics.mode_tv(xp, tilted),
            "mean_reward": metrics.mean_reward(x, self.reward),
            "variance_ratio": metrics.variance_ratio(xp, tilted),
            "effective_beta": metrics.effective_beta(xp, self.data, self.reward, hi=beta_max),
        }

    def floors(self) -> dict[str, float]:
        """``noise_floor()``, computed once."""
        if self._floors is None:
            self._floors = self.noise_floor()
        return self._floors

    def noise_floor(self) -> dict[str, float]:
        """MMD between independent exact sample sets of ``n_eval`` points of p and of p̃ (ring-plane marginals)."""
        n = self.cfg.n_eval
        data, tilted = self.data.project(PLANE), self.tilted.project(PLANE)
        return {"mmd_teacher": metrics.noise_floor(lambda k, g: data.sample(k, g), metrics.mmd, n),
                "mmd_tilted": metrics.noise_floor(lambda k, g: tilted.sample(k, g), metrics.mmd, n)}


class SeedRun:
    """One seed's shared start: the pretrained velocity MLP (generator/fake init, and the teacher when
    ``teacher="mlp"``) and the stage-1 AC-DMD result every stage-2 method starts from (trained on first use).

    Worlds that differ only in reward or β (the sweeps) share it: ``train`` takes the world to train against.
    """

    def __init__(self, world: World, seed: int):
        cfg = self.cfg = world.cfg
        self.seed, self.world = seed, world
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        self.init = pretrain(world.data, cfg.pretrain_steps, batch=256, lr=cfg.pretrain_lr, seed=seed,
                             hidden=cfg.hidden)
        self.seconds = {"_pretrain": time.perf_counter() - t0}
        self.teacher = world.exact_teacher if cfg.teacher == "exact" else self.init
        self._s1: Stage1Result | None = None

    @classmethod
    def restored(cls, world: World, seed: int, init: nn.Module, s1: Stage1Result | None) -> SeedRun:
        """A seed's start rebuilt from its pretrained init and stage-1 result (trained in another process)."""
        run = cls.__new__(cls)
        run.cfg, run.seed, run.world, run.init, run._s1, run.seconds = world.cfg, seed, world, init, s1, {}
        run.teacher = world.exact_teacher if world.cfg.teacher == "exact" else init
        return run

    def stage1(self) -> Stage1Result:
        if self._s1 is None:
            t1 = time.perf_counter()
            recipe, values = method_values(self.cfg, "ac_dmd")
            self._s1 = train_stage1(self.teacher, self.init, values, recipe, list(self.cfg.sigmas), self.cfg.eta,
                                    self.seed)
            self.seconds["_stage1"] = time.perf_counter() - t1
        return self._s1

    def train(self, name: str, world: World | None = None) -> tuple[nn.Module, list[float], float, list[dict]]:
        """Method ``name`` against ``world`` (default: this seed's): ``(net, sampler sigmas, η, metrics rows)``."""
        world = world or self.world
        cfg, sigmas = world.cfg, list(self.cfg.sigmas)
        kind = METHODS[name][0]
        if kind == "teacher":
            return self.teacher, many_step_sigmas(cfg.teacher_steps), 0.0, []
        recipe, values = method_values(cfg, name)
        if kind == "stage1":
            net = self.stage1().generator if name == "ac_dmd" else \
                train_stage1(self.teacher, self.init, values, recipe, sigmas, cfg.eta, self.seed).generator
            return net, sigmas, cfg.eta, []
        s1 = self.stage1()
        res = train_stage2(self.teacher, s1.generator, s1.fake, world.reward, values, recipe, sigmas, cfg.eta,
                           self.seed)
        return res.generator, sigmas, cfg.eta, res.metrics


def run_seed(world: World, methods: Sequence[str], seed: int,
             log: Callable[[str], None] = lambda s: None) -> tuple[dict, dict, dict]:
    """Train and evaluate ``methods`` for one seed.

    Returns:
        ``(metrics {method: {metric: value}}, samples {method: [n, d]}, seconds {method: float})``; stage-2
        seconds exclude the shared pretraining and stage 1 (reported as ``_pretrain`` and ``_stage1``).
    """
    start = SeedRun(world, seed)
    out, samples, seconds = {}, {}, {}
    for name in methods:
        out[name], samples[name], seconds[name], line = _method(start, name)
        log(line)
    return out, samples, {**start.seconds, **seconds}


def _method(start: SeedRun, name: str) -> tuple[dict, torch.Tensor, float, str]:
    """Train ``name`` from ``start`` and evaluate it: ``(metrics, samples [n, d], seconds, log line)``."""
    if METHODS[name][0] == "stage2":
        start.stage1()
    t0 = time.perf_counter()
    net, steps, eta, _ = start.train(name)
    seconds = time.perf_counter() - t0
    g = torch.Generator().manual_seed(10_000 + start.seed)
    x = generate(net, start.world.cfg.n_eval, g, steps, eta)
    out = start.world.evaluate(x, g)
    return out, x, seconds, f"seed {start.seed} {name}: {seconds:.1f}s " + " ".join(
        f"{k}={v:.3g}" for k, v in out.items())


def _mean_std(values: list[float]) -> dict[str, float]:
    t = torch.tensor(values, dtype=torch.float64)
    std = float(t.std(unbiased=True)) if len(values) > 1 else 0.0
    return {"mean": float(t.mean()), "std": std if math.isfinite(std) else 0.0}


_WORLDS: dict[str, World] = {}


def _worker_world(cfg: BenchConfig, threads: int) -> World:
    """This worker process's world for ``cfg`` (built once per process; its noise floors are cached in it)."""
    import json

    torch.set_num_threads(threads)
    key = json.dumps(config_dict(cfg), sort_keys=True, default=list)
    if key not in _WORLDS:
        _WORLDS[key] = World(cfg)
    return _WORLDS[key]


def _start_job(cfg: BenchConfig, seed: int, stage1: bool, threads: int) -> tuple[nn.Module, Any, dict]:
    """A seed's pretraining (and stage 1 when a stage-2 method needs it) in a worker process."""
    start = SeedRun(_worker_world(cfg, threads), seed)
    s1 = start.stage1() if stage1 else None
    return start.init, s1, start.seconds


def _method_job(cfg: BenchConfig, seed: int, name: str, init: nn.Module, s1: Any,
                threads: int) -> tuple[dict, torch.Tensor, float, str]:
    """One (seed, method) cell in a worker process, from the seed's start trained by ``_start_job``."""
    return _method(SeedRun.restored(_worker_world(cfg, threads), seed, init, s1), name)


def _run_parallel(cfg: BenchConfig, methods: Sequence[str], seeds: int, workers: int,
                  log: Callable[[str], None]) -> list[tuple[dict, dict, dict]]:
    """``run_seed`` for every seed, as (seed, method) jobs on ``workers`` processes: each seed's start first, then
    its methods (which depend on nothing but that start and their own seeds, so the results equal the serial
    ones)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = torch.get_num_threads()
    needs_stage1 = any(METHODS[m][0] == "stage2" or m == "ac_dmd" for m in methods)
    results = [({}, {}, {}) for _ in range(seeds)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(_start_job, cfg, seed, needs_stage1, threads): ("start", seed, None)
                   for seed in range(seeds)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for job in done:
                kind, seed, name = pending.pop(job)
                if kind == "start":
                    init, s1, seconds = job.result()
                    results[seed][2].update(seconds)
                    for m in methods:
                        pending[pool.submit(_method_job, cfg, seed, m, init, s1, threads)] = ("method", seed, m)
                else:
                    out, x, secs, line = job.result()
                    results[seed][0][name], results[seed][1][name], results[seed][2][name] = out, x, secs
                    log(line)
    # methods in the order asked for, as the serial run gives them
    return [({m: r[m] for m in methods}, {m: x[m] for m in methods}, s) for r, x, s in results]


def run(cfg: BenchConfig, methods: Sequence[str], seeds: int,
        log: Callable[[str], None] = lambda s: None, workers: int = 1) -> tuple[dict, dict, dict]:
    """All seeds; with ``workers`` > 1 as (seed, method) jobs in that many processes (every cell seeds itself, so
    the results do not depend on ``workers``). Returns ``(json_document, samples_of_seed_0, seconds {method: {"mean","std"}})``."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown toy methods {unknown}; expected some of {list(METHODS)}")
    world = World(cfg)
    if workers > 1:
        results = _run_parallel(cfg, methods, seeds, workers, log)
    else:
        results = [run_seed(world, methods, seed, log) for seed in range(seeds)]
    per_seed, secs, first = [], [], {}
    for res, samples, seconds in results:
        per_seed.append(res)
        secs.append(seconds)
        first = first or samples
    doc = {
        "config": config_dict(cfg),
        "noise_floor": world.noise_floor(),
        "methods": {m: {k: _mean_std([r[m][k] for r in per_seed]) for k in METRICS} for m in methods},
    }
    timing = {k: _mean_std([s[k] for s in secs]) for k in secs[0]}
    return doc, first, timing


def plot(world: World, samples: dict[str, torch.Tensor], path: str, doc: dict | None = None) -> None:
    """One panel per method: its samples over the density contours of p̃ (Agg backend, PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(samples)
    cols = min(5, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    ax_ = torch.linspace(-3.5, 3.5, 200)
    xx, yy = torch.meshgrid(ax_, ax_, indexing="xy")
    plane = world.tilted.project(PLANE)  # d > 2: the ring plane
    dens = plane.log_prob(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)).exp().reshape(200, 200)
    for a, name in zip(axes.flat, names):
        a.contour(xx.numpy(), yy.numpy(), dens.numpy(), levels=6, cmap="Greys", linewidths=0.7)
        x = samples[name].numpy()
        a.scatter(x[:, 0], x[:, 1], s=1.5, alpha=0.5, color="tab:blue")
        title = name
        if doc is not None:
            m = doc["methods"][name]
            title += f"\nMMD(p~)={m['mmd_tilted']['mean']:.3f}  beta_eff={m['effective_beta']['mean']:.2f}"
        a.set_title(title, fontsize=8)
        a.set_xlim(-3.5, 3.5)
        a.set_ylim(-3.5, 3.5)
        a.set_aspect("equal")
        a.set_xticks([])
        a.set_yticks([])
    for a in list(axes.flat)[len(names):]:
        a.axis("off")
    fig.suptitle(f"toy world: samples over p~ = p exp(beta r)/Z contours (beta={world.cfg.beta})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
