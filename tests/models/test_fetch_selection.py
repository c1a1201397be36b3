"""``weights fetch`` downloads exactly what a pipeline loads: the selection on recorded listings of SD3.5-Medium,
FLUX.2-klein-4B and FLUX.1-dev (offline), the dry-run rendering, the offline one-liners, PickScore's safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app
from rtdmd_bench.models.fetch import pipeline_components, plan_from_listing, select_pipeline_files

LISTINGS = Path(__file__).parent / "data" / "hub_listings"
runner = CliRunner()


def _listing(name: str) -> dict:
    return json.loads((LISTINGS / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["sd35_medium", "flux2_klein_4b", "flux1_dev"])
def test_selection_is_exactly_what_the_pipeline_loads(name):
    rec = _listing(name)
    files = [p for p, _ in rec["files"]]
    chosen = select_pipeline_files(rec["model_index"], files)
    assert set(chosen) <= set(files) and len(chosen) == len(set(chosen))
    assert not any(p.startswith("text_encoders/") for p in chosen)  # ComfyUI single files
    assert not any(".fp16" in p for p in chosen)  # precision duplicates
    assert all("/" in p or p == "model_index.json" for p in chosen)  # no top-level single-file checkpoint
    components = pipeline_components(rec["model_index"])
    assert {p.split("/")[0] for p in chosen if "/" in p} == set(components)  # no stray folder ("vae copy/")
    for comp in components:
        assert f"{comp}/config.json" in chosen or comp.startswith(("tokenizer", "scheduler"))
        if not comp.startswith(("tokenizer", "scheduler")):
            assert any(p.startswith(f"{comp}/") and p.endswith(".safetensors") for p in chosen), comp


def test_sd35_medium_plan_skips_33_gb():
    rec = _listing("sd35_medium")
    plan = plan_from_listing(rec["repo"], "main", rec["model_index"], [tuple(x) for x in rec["files"]], "/w/models/x")
    skipped = dict(plan.skipped)
    assert sum(s for p, s in skipped.items() if p.startswith("text_encoders/")) == pytest.approx(16.3e9, rel=1e-2)
    assert sum(s for p, s in skipped.items() if ".fp16" in p) == pytest.approx(11.2e9, rel=1e-2)
    assert "vae copy/diffusion_pytorch_model.safetensors" in skipped and "sd3.5_medium.safetensors" in skipped
    assert "text_encoder_3/model.safetensors.index.json" in dict(plan.files)
    assert 17.8e9 < plan.total_bytes < 18e9  # 17.9 GB of the repo's 50.7 GB
    text = plan.render()
    assert "17.9 GB  total, 26 files" in text and "not downloaded: 19 files, 32.8 GB" in text


def test_pickscore_fetches_safetensors_not_the_pickle():
    from rtdmd_bench.rewards import REWARDS

    (pick,) = [f for r, f, _ in REWARDS.spec("pickscore").fetch if r == "yuvalkirstain/PickScore_v1"]
    assert "model.safetensors" in pick and ".bin" not in pick


def test_offline_fetch_is_one_line_with_the_manual_alternative(tmp_path):
    for args, needle in ((["weights", "fetch", "flux2-4b", "--dry-run"], "models/FLUX.2-klein-4B"),
                         (["weights", "fetch", "acme/some-model@v1"], "Hugging Face cache"),
                         (["weights", "fetch", "aesthetic"], "aesthetic")):
        res = runner.invoke(app, [*args, "--weights", str(tmp_path)])
        assert res.exit_code == 2, res.output
        lines = [x for x in res.output.strip().splitlines() if x.strip()]
        assert len(lines) == 1 and "offline" in lines[0] and "Manual alternative" in lines[0], res.output
        assert needle in lines[0] and "Traceback" not in res.output
    res = runner.invoke(app, ["weights", "fetch", "tiny-flux2"])
    assert res.exit_code == 2 and "tiny random weights" in res.output
