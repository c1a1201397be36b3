"""Resolve an EvalConfig into work items, validating every name BEFORE any model loads."""

from __future__ import annotations

from dataclasses import dataclass

from rtdmd_bench.eval.config import EvalConfig
from rtdmd_bench.registry import Registry, RegistryError, Spec


@dataclass(frozen=True)
class BenchmarkSpec(Spec):
    """A named routing of suites to rewards (``target`` unused)."""

    routing: tuple[tuple[str, tuple[str, ...]], ...] = ()
    note: str = ""

    def summary(self) -> dict[str, str]:
        return {"routing": "; ".join(f"{s}: {','.join(r)}" for s, r in self.routing)}


BENCHMARKS: Registry[BenchmarkSpec] = Registry("benchmark")
BENCHMARKS.add(BenchmarkSpec(
    name="rtdmd-paper", target="rtdmd_bench.eval.plan:BENCHMARKS",
    description="RTDMD paper routing (reference reward_dataset_map): CLIP/Aesthetic/Pick/HPSv2.1/ImageReward on "
                "DrawBench, HPSv3 on HPDv3, GenEval on GenEval (4/prompt), GenEval2 on GenEval2, OCR on the OCR set",
    routing=(("drawbench", ("clipscore", "aesthetic", "pickscore", "hpsv2", "imagereward")),
             ("hpdv3", ("hpsv3",)), ("geneval", ("geneval",)), ("geneval2", ("geneval2",)), ("ocr", ("ocr",))),
    note="the reference caps each set at its first 64 prompts (--limit 64); full sets are the default here",
))


@dataclass(frozen=True)
class WorkItem:
    """One image to produce: the unit of sharding, caching and resume."""

    suite: str          # suite name
    suite_id: str       # name@version
    prompt_id: int
    sample_idx: int
    prompt: str
    seed: int
    tag: str | None
    metadata: dict

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.suite, self.prompt_id, self.sample_idx)

    @property
    def image_rel(self) -> str:
        return f"images/{self.suite}/{self.prompt_id:05d}_{self.sample_idx:02d}.png"


@dataclass
class Plan:
    """Everything a run will do: items in canonical order and the rewards per suite."""

    items: list[WorkItem]
    rewards: dict[str, tuple[str, ...]]   # suite name -> reward names
    suites: dict[str, object]             # suite name -> SuiteSpec
    n_prompts_used: dict[str, int]


def routing(cfg: EvalConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(suite, rewards) pairs from a benchmark preset, or from ``suites`` x (``rewards`` or defaults)."""
    from rtdmd_bench.suites import suite_spec

    if cfg.benchmark:
        bench = BENCHMARKS.spec(cfg.benchmark)
        return [(s, tuple(cfg.rewards) or r) for s, r in bench.routing]
    if not cfg.suites:
        raise RegistryError("no suite given: pass --suite NAME[,NAME] or --benchmark NAME")
    return [(s, tuple(cfg.rewards) or suite_spec(s).default_rewards) for s in cfg.suites]


def check_rewards(route: list[tuple[str, tuple[str, ...]]], options: dict[str, dict] | None = None) -> None:
    """Every reward is known, gets the inputs it needs from its suite, and has only options it declares."""
    from rtdmd_bench.rewards import RewardOptionsError, check_option_names, reward_options, reward_spec
    from rtdmd_bench.suites import suite_spec

    used = {name for _, rewards in route for name in rewards}
    for name, opts in (options or {}).items():
        if name not in used:
            raise RewardOptionsError(f"reward_options.{name}: reward {name!r} is not scored in this run "
                                     f"(rewards: {', '.join(sorted(used))})")
        check_option_names(name, opts)
        reward_options(name, opts)  # values typed and checked (imports the scorer's module, loads nothing)
    for suite, rewards in route:
        if not rewards:
            raise RegistryError(f"suite {suite!r} has no default rewards; pass --rewards a,b")
        sspec = suite_spec(suite)
        for name in rewards:
            rspec = reward_spec(name)
            if rspec.needs_metadata and not sspec.metadata_fields:
                raise RegistryError(f"reward {name!r} needs per-prompt metadata, which suite {suite!r} does not have")


def make_plan(cfg: EvalConfig) -> Plan:
    """Validate names, load prompts (checksums verified) and enumerate work items in canonical order."""
    from rtdmd_bench.seeds import item_seed
    from rtdmd_bench.suites import load_suite, suite_spec

    if cfg.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.limit is not None and cfg.limit < 1:
        raise ValueError(f"limit must be >= 1, got {cfg.limit}")
    route = routing(cfg)
    check_rewards(route, cfg.reward_options)
    items, suites, used = [], {}, {}
    for suite, _ in route:
        spec = suite_spec(suite)
        prompts = load_suite(suite)[: cfg.limit] if cfg.limit else load_suite(suite)
        k = cfg.samples_per_prompt or spec.images_per_prompt
        if k < 1:
            raise ValueError(f"samples_per_prompt must be >= 1, got {k}")
        suites[suite], used[suite] = spec, len(prompts)
        items += [
            WorkItem(suite, spec.id, p.prompt_id, j, p.prompt, item_seed(spec.id, p.prompt_id, j, cfg.seed), p.tag,
                     dict(p.metadata))
            for p in prompts for j in range(k)
        ]
    return Plan(items=items, rewards=dict(route), suites=suites, n_prompts_used=used)
