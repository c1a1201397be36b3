"""The recipe interface: how the CLI, ``validate``, the toy benchmark and tests drive any trainer.

A recipe module (``rtdmd_bench.trainers.<name>``; the repository's ``trainers/`` folder) exports ``RECIPE``::

    RECIPE = Recipe(config=Stage1Config, validate=validate, build=build, step=step, record=record)

* ``config``: its frozen root config dataclass (strict YAML loading, ``--set``);
* ``validate(cfg, world)``: every check that needs no weights (model/reward names, batch × K × world); ``world``
  None means the world size the config is written for;
* ``build(cfg, cfg_dict, *, weights, out, resume, device, world=None) -> run``: the session (``run.sess``) and
  whatever the step needs; ``world`` (``InMemoryWorld``) replaces the registry backbone, prompts and rewards by
  in-memory objects (the toy world);
* ``step(run) -> metrics``: one optimizer-step-sized unit (a stage-1 train step, a stage-2 epoch);
* ``record(run) -> dict``: the ``training.json`` written beside the exported LoRA.

``Recipe.__call__`` (``train``) runs it end to end: build, loop with checkpoints and periodic evaluation, export.
Recipes are registered by name in ``training.registry.TRAINERS`` (target ``module:RECIPE``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InMemoryWorld:
    """In-memory replacements for a run's registry objects (the toy world; no weights root).

    Attributes:
        backbone: a ``training.backbone.Backbone`` used instead of the registry adapters.
        prompts: the prompt list (empty metadata) used instead of ``data.prompts``.
        rewards: ``{name: (module, weight)}`` used instead of registry rewards; modules are called like registry
            rewards and taken as differentiable.
    """

    backbone: Any
    prompts: Sequence[str]
    rewards: Mapping[str, tuple[Any, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A registered trainer; see the module docstring for each member's contract."""

    config: type
    validate: Callable[[Any, int | None], None]
    build: Callable[..., Any]
    step: Callable[[Any], Mapping[str, Any]]
    record: Callable[[Any], dict]

    def __call__(self, cfg: Any, cfg_dict: dict, *, weights: str | None, out: str, resume: bool = False,
                 device: str | None = None, world: InMemoryWorld | None = None, force: bool = False):
        return train(self, cfg, cfg_dict, weights=weights, out=out, resume=resume, device=device, world=world,
                     force=force)


def train(recipe: Recipe, cfg: Any, cfg_dict: dict, *, weights: str | None, out: str, resume: bool = False,
          device: str | None = None, world: InMemoryWorld | None = None, force: bool = False):
    """Build, train ``cfg.train.steps`` steps (checkpoints every ``train.save_every`` and at the end, periodic
    evaluation per ``cfg.eval``), export the LoRA with ``recipe.record``; returns the ``Session``.

    ``out`` holding another run is refused unless ``resume`` or ``force`` (``training.rundir.prepare``).
    """
    from rtdmd_bench import parallel
    from rtdmd_bench.training import loop, rundir, session
    from rtdmd_bench.training.periodic_eval import maybe_evaluate

    rundir.prepare(out, resume=resume, force=force, is_main=parallel.rank_world()[0] == 0)
    run = recipe.build(cfg, cfg_dict, weights=weights, out=out, resume=resume, device=device, world=world)
    sess = run.sess
    loop.run(sess.state, lambda _s: recipe.step(run), steps=cfg.train.steps, out=out, dist=sess.dist,
             logger=sess.logger, cfg_hash=sess.cfg_hash, save_every=cfg.train.save_every,
             on_step_end=lambda _s: maybe_evaluate(sess, cfg.eval, weights))
    session.export(sess, cfg.lora, recipe.record(run))
    sess.logger.close()
    return sess
