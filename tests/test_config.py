from dataclasses import dataclass, field

import pytest

from rtdmd_bench.config import ConfigError, load, read_yaml, save, to_dict


@dataclass(frozen=True)
class Opt:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class Root:
    name: str = "x"
    steps: int = 2
    flag: bool = False
    mode: str | None = None
    opt: Opt = field(default_factory=Opt)
    weights: dict[str, float] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


def test_yaml_then_overrides_coerced_by_type(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 5\nopt:\n  lr: 3e-6\nweights: {pickscore: 1}\ntags: [a, b]\n")
    cfg = load(Root, p, ["opt.lr=1e-4", "flag=true", "weights.hpsv2=0.5", "name=7"])
    assert cfg.steps == 5 and cfg.opt.lr == 1e-4 and cfg.flag is True
    assert cfg.weights == {"pickscore": 1.0, "hpsv2": 0.5}
    assert cfg.tags == ("a", "b") and cfg.name == "7"
    assert isinstance(cfg.opt.betas, tuple)


def test_unknown_key_at_any_depth_names_key_and_nearest(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("opt:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'opt.lrr'.*Did you mean 'opt.lr'"):
        load(Root, p)
    with pytest.raises(ConfigError, match=r"unknown config key 'stpes'.*Did you mean 'steps'"):
        load(Root, None, ["stpes=3"])
    with pytest.raises(ConfigError, match="'opt.bettas'"):
        load(Root, None, ["opt.bettas=[1, 2]"])


def test_type_mismatch_names_key():
    with pytest.raises(ConfigError, match="'steps': expected an integer"):
        load(Root, None, ["steps=abc"])
    with pytest.raises(ConfigError, match="'flag': expected true/false"):
        load(Root, None, ["flag=3"])
    with pytest.raises(ConfigError, match=r"'opt.betas': expected 2 items"):
        load(Root, None, ["opt.betas=[1]"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load(Root, None, ["steps.x=1"])


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("a: 1\nb: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+"):
        read_yaml(p)
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "missing.yaml")


def test_frozen_and_roundtrip(tmp_path):
    cfg = load(Root, None, ["opt.lr=0.5"])
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3  # type: ignore[misc]
    save(cfg, tmp_path / "out.yaml")
    again = load(Root, tmp_path / "out.yaml")
    assert again == cfg and to_dict(again)["opt"]["betas"] == [0.9, 0.999]
