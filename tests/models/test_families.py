"""The FamilySpec contract, checked for every registered generator family (docs/extending.md: registering a family
with a tiny preset is what puts it under these tests and the adapter tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rtdmd_bench.models import MODELS
from rtdmd_bench.models.family import FAMILIES, detect_family

FAMS = [f.name for f in FAMILIES.in_registration_order()]


def _configs(root: str, fam) -> tuple[dict, dict]:
    folder = Path(root) / MODELS.spec(fam.tiny.name).weights_dir
    return (json.loads((folder / "model_index.json").read_text()),
            json.loads((folder / "transformer" / "config.json").read_text()))


@pytest.mark.parametrize("name", FAMS)
def test_family_has_a_tiny_catalogue_entry(name):
    fam = FAMILIES.spec(name)
    assert fam.tiny is not None, f"family {name} needs a tiny preset (docs/extending.md)"
    spec = MODELS.spec(fam.tiny.name)
    assert spec.family == name and spec.tiny and spec.target == fam.target
    assert set(fam.samplers) <= {"cps", "euler_cfg"} and fam.timestep in ("1000_sigma", "quantized_sigma")


@pytest.mark.parametrize("name", FAMS)
def test_saved_pipeline_is_recognised_as_its_family(tiny_models, name):
    model_index, transformer = _configs(tiny_models, FAMILIES.spec(name))
    assert model_index["_class_name"] == FAMILIES.spec(name).pipeline_class
    assert detect_family(model_index, transformer).name == name


def test_unknown_pipeline_is_a_clear_error():
    with pytest.raises(ValueError, match="not a supported generator family; supported: .*FluxPipeline"):
        detect_family({"_class_name": "StableDiffusionXLPipeline"}, {})


@pytest.mark.parametrize("name", FAMS)
def test_lora_targets_exist_in_the_transformer(generators, name):
    gen = generators[FAMILIES.spec(name).tiny.name]
    targets = FAMILIES.spec(name).lora_targets(gen.transformer)
    modules = [n for n, _ in gen.transformer.named_modules()]
    missing = [t for t in targets if not any(m == t or m.endswith("." + t) for m in modules)]
    assert targets and not missing


@pytest.mark.parametrize("name", FAMS)
def test_schedules_and_timestep_input(generators, name):
    gen, fam = generators[FAMILIES.spec(name).tiny.name], FAMILIES.spec(name)
    cps = gen.cps_sigmas()
    assert cps[0] == 1.0 and cps[-1] == 0.0 and all(a > b for a, b in zip(cps, cps[1:]))
    euler = gen.euler_sigmas(6)
    assert len(euler) == 7 and euler[-1] == 0.0 and all(a > b for a, b in zip(euler, euler[1:]))
    t = fam.timestep_input(torch.tensor([0.9, 0.5]), torch.float32)
    scale = 1000.0 if fam.timestep == "1000_sigma" else 1.0
    torch.testing.assert_close(t, torch.tensor([0.9, 0.5]) * scale)
    with pytest.raises(ValueError, match=r"\(0, 1000\]"):
        fam.cps_sigmas([0.0], 64, 64, gen.pipe.scheduler.config)


@pytest.mark.parametrize("name", FAMS)
def test_nfe_counts_transformer_forwards(name):
    fam = FAMILIES.spec(name)
    spec = MODELS.spec(fam.tiny.name)
    import dataclasses

    teacher = dataclasses.replace(spec, sampler="euler_cfg", steps=10, guidance=4.0)
    assert spec.nfe == 4 and teacher.nfe == (20 if fam.guidance == "cfg" else 10)
