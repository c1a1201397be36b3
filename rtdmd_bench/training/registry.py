"""TRAINERS registry (torch-free): recipe name -> ``main`` target, config class, default config folder.

``rtdmd-bench list trainers`` reads the specs; ``rtdmd-bench validate trainers/configs/...`` calls
``validate_trainer_config``; ``rtdmd-bench train --stage 1|2`` maps the stage to ``stage1_acdmd``/``stage2_rtdmd``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtdmd_bench.registry import Registry, Spec, import_target


@dataclass(frozen=True)
class TrainerSpec(Spec):
    """A recipe: ``target`` is its ``main``; ``config`` its root config class; ``configs`` its YAML folder."""

    config: str = ""
    configs: str = ""
    stage: int = 0
    algorithm: str = ""

    def summary(self) -> dict[str, str]:
        return {"stage": str(self.stage or "-"), "algorithm": self.algorithm, "configs": self.configs}


TRAINERS: Registry[TrainerSpec] = Registry("trainer")
for _spec in (
    TrainerSpec("stage1_acdmd", "trainers.stage1_acdmd:main", "Stage 1: AC-DMD cold start (ambient DMD + consistency)",
                config="trainers.stage1_acdmd:Stage1Config", configs="stage1", stage=1, algorithm="AC-DMD"),
    TrainerSpec("stage2_rtdmd", "trainers.stage2_rtdmd:main",
                "Stage 2: RTDMD (SubGRPO + last-step DMD + reward back-propagation)",
                config="trainers.stage2_rtdmd:Stage2Config", configs="stage2", stage=2, algorithm="RTDMD"),
    TrainerSpec("dmd", "trainers.dmd:main", "Baseline: plain DMD (stage 1 without ambient target / consistency)",
                config="trainers.dmd:DMDConfig", configs="dmd", algorithm="DMD"),
    TrainerSpec("grpo", "trainers.grpo:main", "Baseline: pure Flow-GRPO (no DM term, optional KL to the initial policy)",
                config="trainers.grpo:GRPOConfig", configs="grpo", algorithm="GRPO"),
):
    TRAINERS.add(_spec)

STAGES = {1: "stage1_acdmd", 2: "stage2_rtdmd"}


def configs_root() -> Path:
    """``trainers/configs`` of the installed recipes package."""
    import trainers

    return Path(next(iter(trainers.__path__))) / "configs"  # __path__: also works for a namespace install


def trainer_for_config(path: str | Path) -> str:
    """The trainer whose config folder holds ``path`` (``.../configs/<folder>/<file>.yaml``)."""
    folder = Path(path).resolve().parent.name
    for spec in TRAINERS:
        if spec.configs == folder:
            return spec.name
    raise KeyError(f"{path}: trainer configs live in trainers/configs/<{'|'.join(s.configs for s in TRAINERS)}>/")


def validate_trainer_config(path: str | Path) -> str:
    """Strict-load a recipe YAML and resolve every registry name in it (no weights). Returns a one-line summary."""
    from rtdmd_bench import config

    name = trainer_for_config(path)
    spec = TRAINERS.spec(name)
    cfg = config.load(import_target(spec.config), path)
    import_target(spec.target.replace(":main", ":validate"))(*_validate_args(cfg, spec))
    return f"{name} config: model {cfg.model.name}"


def _validate_args(cfg, spec: TrainerSpec) -> tuple:
    return (cfg, cfg.sampling.expected_world) if spec.name in ("stage2_rtdmd", "grpo") else (cfg,)
