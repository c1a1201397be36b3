"""The calibrated tilt is a `--set` on the shipped stage-2 configs, refused with a second source of tilt."""

from pathlib import Path

import pytest
from rtdmd_bench.trainers.stage2_rtdmd import Stage2Config, validate

from rtdmd_bench import config

CONFIGS = sorted((Path(__file__).parents[2] / "trainers" / "configs" / "stage2").glob("*.yaml"))
CALIBRATED = ["aux.tilt_beta=0.5", "policy.enabled=false", "bp.enabled=false"]


@pytest.mark.parametrize("path", CONFIGS[:2], ids=lambda p: p.stem)
def test_calibrated_mode_validates_on_the_stage2_configs(path):
    cfg = config.load(Stage2Config, path, CALIBRATED)
    assert cfg.aux.tilt_beta == 0.5 and cfg.aux.loss != "none"
    validate(cfg)


@pytest.mark.parametrize("extra,fix", [([], "policy.enabled=false, bp.enabled=false"),
                                       (["policy.enabled=false"], "bp.enabled=false"),
                                       (["policy.enabled=false", "bp.enabled=false", "aux.loss=none"],
                                        "aux.loss=ac_dmd")])
def test_calibrated_mode_refuses_a_second_tilt(extra, fix):
    cfg = config.load(Stage2Config, CONFIGS[0], ["aux.tilt_beta=1.0", *extra])
    with pytest.raises(ValueError, match=f"set {fix}$"):
        validate(cfg)
    with pytest.raises(ValueError, match="must be >= 0"):
        validate(config.load(Stage2Config, CONFIGS[0], [*CALIBRATED, "aux.tilt_beta=-1"]))
