"""TRAINERS registry (torch-free): recipe name -> its ``RECIPE`` (``training.recipe.Recipe``) and default config folder.

``rtdmd-bench list trainers`` reads the specs; ``rtdmd-bench validate trainers/configs/...`` calls
``validate_trainer_config``; ``rtdmd-bench train --stage 1|2`` maps the stage to ``stage1_acdmd``/``stage2_rtdmd``.
The recipes live in ``rtdmd_bench.trainers`` (the repository's ``trainers/`` folder) and are imported only by
``TRAINERS.get``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtdmd_bench.registry import Registry, Spec


@dataclass(frozen=True)
class TrainerSpec(Spec):
    """A recipe: ``target`` is its ``RECIPE``; ``configs`` its YAML folder under ``trainers/configs``."""

    configs: str = ""
    stage: int = 0
    algorithm: str = ""

    def summary(self) -> dict[str, str]:
        return {"stage": str(self.stage or "-"), "algorithm": self.algorithm, "configs": self.configs}


TRAINERS: Registry[TrainerSpec] = Registry("trainer")
_PKG = "rtdmd_bench.trainers"
for _spec in (
    TrainerSpec("stage1_acdmd", f"{_PKG}.stage1_acdmd:RECIPE", "Stage 1: AC-DMD cold start (ambient DMD + consistency)",
                configs="stage1", stage=1, algorithm="AC-DMD"),
    TrainerSpec("stage2_rtdmd", f"{_PKG}.stage2_rtdmd:RECIPE",
                "Stage 2: RTDMD (SubGRPO + last-step DMD + reward back-propagation)",
                configs="stage2", stage=2, algorithm="RTDMD"),
    TrainerSpec("dmd", f"{_PKG}.dmd:RECIPE", "Baseline: plain DMD (stage 1 without ambient target / consistency)",
                configs="dmd", algorithm="DMD"),
    TrainerSpec("grpo", f"{_PKG}.grpo:RECIPE", "Baseline: pure Flow-GRPO (no DM term, optional KL to the initial policy)",
                configs="grpo", algorithm="GRPO"),
):
    TRAINERS.add(_spec)

STAGES = {1: "stage1_acdmd", 2: "stage2_rtdmd"}


def configs_root() -> Path:
    """``configs/`` of the installed recipes package (located, not imported)."""
    import importlib.util

    spec = importlib.util.find_spec(_PKG)
    return Path(next(iter(spec.submodule_search_locations))) / "configs"


def trainer_for_config(path: str | Path) -> str:
    """The trainer whose config folder holds ``path`` (``.../configs/<folder>/<file>.yaml``)."""
    folder = Path(path).resolve().parent.name
    for spec in TRAINERS:
        if spec.configs == folder:
            return spec.name
    raise KeyError(f"{path}: trainer configs live in trainers/configs/<{'|'.join(s.configs for s in TRAINERS)}>/")


def validate_trainer_config(path: str | Path) -> str:
    """Strict-load a recipe YAML and run the recipe's static checks (no weights). Returns a one-line summary."""
    from rtdmd_bench import config

    name = trainer_for_config(path)
    recipe = TRAINERS.get(name)
    cfg = config.load(recipe.config, path)
    recipe.validate(cfg, None)
    return f"{name} config: model {cfg.model.name}"
