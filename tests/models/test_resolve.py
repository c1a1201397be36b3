"""``--model`` resolution: local diffusers folders of every family, hub repo ids from a pre-populated Hugging Face
cache (no network), identity without machine paths, and the bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rtdmd_bench.models import MODELS
from rtdmd_bench.models.family import FAMILIES
from rtdmd_bench.models.resolve import ModelRefError, check_model_ref, resolve_model
from rtdmd_bench.registry import RegistryError
from rtdmd_bench.testing import write_hf_cache

TINY = [f.tiny.name for f in FAMILIES.in_registration_order() if f.tiny is not None]
SHA = "0123456789abcdef0123456789abcdef01234567"


def tiny_folder(tiny_models: str, name: str) -> Path:
    return Path(tiny_models) / MODELS.spec(name).weights_dir


@pytest.mark.parametrize("name", TINY)
def test_folder_gets_its_family_and_the_checkpoints_defaults(tiny_models, name):
    folder = tiny_folder(tiny_models, name)
    spec = resolve_model(str(folder)).spec
    fam = FAMILIES.spec(MODELS.spec(name).family)
    index = json.loads((folder / "model_index.json").read_text())
    tcfg = json.loads((folder / "transformer" / "config.json").read_text())
    expected = fam.sampling_defaults(index, tcfg)
    assert spec.family == fam.name and spec.origin == "folder"
    assert (spec.sampler, spec.steps, spec.guidance) == (expected.sampler, expected.steps, expected.guidance)
    assert (spec.height, spec.width) == (64, 64)  # the VAE's sample_size
    assert spec.name == f"{folder.name}@sha256:{spec.content_sha256[:12]}" and len(spec.content_sha256) == 64


def test_family_defaults_follow_the_checkpoint():
    flux2, flux1 = FAMILIES.spec("flux2_klein"), FAMILIES.spec("flux1")
    distilled = flux2.sampling_defaults({"is_distilled": True}, {})
    base = flux2.sampling_defaults({"is_distilled": False}, {})
    assert (distilled.steps, distilled.guidance, base.steps, base.guidance) == (4, 1.0, 50, 4.0)
    assert flux1.sampling_defaults({}, {"guidance_embeds": True}).guidance == 3.5
    assert flux1.sampling_defaults({}, {"guidance_embeds": False}).steps == 4


def test_content_hash_changes_with_the_weights(tiny_models, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_folder(tiny_models, "tiny-sd3"), folder)
    first = resolve_model(str(folder)).spec.content_sha256
    (folder / "README.md").write_text("not loaded by the pipeline")  # ignored
    assert resolve_model(str(folder)).spec.content_sha256 == first
    cfg = folder / "scheduler" / "scheduler_config.json"
    cfg.write_text(cfg.read_text().replace('"shift": 3.0', '"shift": 2.0'))
    assert resolve_model(str(folder)).spec.content_sha256 != first


def test_hub_id_from_a_prepopulated_cache(tiny_models, tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    write_hf_cache(cache, "acme/klein-tiny", tiny_folder(tiny_models, "tiny-flux2"), SHA, refs=("main", "v1"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for ref in ("acme/klein-tiny", "acme/klein-tiny@v1", f"acme/klein-tiny@{SHA}", "hf://acme/klein-tiny"):
        spec = resolve_model(ref).spec
        assert (spec.origin, spec.hub_id, spec.revision, spec.family) == ("hub", "acme/klein-tiny", SHA, "flux2_klein")
        assert spec.name == f"acme/klein-tiny@{SHA[:12]}" and (spec.steps, spec.guidance) == (4, 1.0)
    with pytest.raises(ModelRefError) as err:
        resolve_model("acme/not-cached")
    msg = str(err.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE" in msg and "rtdmd-bench weights fetch acme/not-cached" in msg


def test_hub_id_of_a_catalogue_entry_uses_its_folder_under_the_weights_root(tiny_models):
    spec = resolve_model(MODELS.spec("tiny-sd35").hub_id, tiny_models).spec  # "tiny/tiny-sd35", not in the HF cache
    assert spec.origin == "hub" and spec.family == "sd35" and Path(spec.weights_dir).name == "tiny-sd35"


def test_local_folder_wins_over_a_repo_id_and_says_so(tiny_models, tmp_path, monkeypatch):
    shutil.copytree(tiny_folder(tiny_models, "tiny-flux1"), tmp_path / "acme" / "flux-tiny")
    monkeypatch.chdir(tmp_path)
    res = resolve_model("acme/flux-tiny")
    assert res.spec.origin == "folder" and res.spec.family == "flux1"
    assert any("local folder" in n and "hf://acme/flux-tiny" in n for n in res.notes)
    assert check_model_ref("acme/flux-tiny") == res.notes


def test_bad_folders_are_one_clear_line(tiny_models, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelRefError, match="is not a diffusers pipeline folder \\(no model_index.json\\)"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ModelRefError, match="no such folder"):
        resolve_model("./does-not-exist")
    sdxl = tmp_path / "sdxl"
    sdxl.mkdir()
    (sdxl / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    with pytest.raises(ModelRefError, match="not a supported generator family; supported: .*Flux2KleinPipeline"):
        resolve_model(str(sdxl))
    with pytest.raises(RegistryError, match="Did you mean 'tiny-flux2'.*Hugging Face repo id"):
        resolve_model("tiny-flux3")
