"""``rtdmd-bench bench gpu --tiny``: the GPU benchmark's whole code path on the CPU with the tiny presets, so it
cannot rot before a GPU runs it (its figures are meaningless at 64x64 and are not checked)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rtdmd_bench.cli import app


def test_gpu_benchmark_tiny_runs_end_to_end_and_writes_json_and_table(tmp_path):
    out, table = tmp_path / "gpu.json", tmp_path / "gpu.md"
    res = CliRunner().invoke(app, ["bench", "gpu", "--tiny", "--batches", "2", "--images", "2",
                                   "--out", str(out), "--table", str(table)])
    assert res.exit_code == 0, res.output
    results = json.loads(out.read_text())
    assert set(results["models"]) == {"flux2-klein-4b", "sd35m"} and results["mode"].startswith("tiny")
    for entry in results["models"].values():
        assert set(entry["batches"]) == {"2"}
        for point in entry["batches"].values():
            assert point["bare_images_per_s"] > 0 and point["harness_images_per_s"] > 0
            assert {"quantize_s", "score_s", "png_encode_s"} <= set(point["harness_profile_s"])
    assert len(results["train"]["step_s"]) == 2 and results["train"]["config"]["model.gradient_checkpointing"]
    text = table.read_text()
    assert "| flux2-klein-4b | 2 |" in text and "Stage-2 RTDMD step" in text and text in res.output


def test_full_size_pipelines_match_the_published_parameter_counts():
    """The full-size builders, on the meta device (no memory): the published configs give the published sizes."""
    import pytest
    import torch

    from rtdmd_bench.bench.gpu_models import FULL_BUILDERS, parameter_count

    flux = parameter_count(FULL_BUILDERS["flux2-klein-4b"]("meta", torch.bfloat16))
    assert flux["transformer"] == pytest.approx(3.876e9, rel=0.01)  # FLUX.2-klein-4B
    assert flux["text_encoder"] == pytest.approx(4.022e9, rel=0.01)  # Qwen3-4B
    sd = parameter_count(FULL_BUILDERS["sd35m"]("meta", torch.bfloat16))
    assert sd["transformer"] == pytest.approx(2.243e9, rel=0.01)  # SD3.5-Medium MMDiT-X
    assert sd["text_encoder_3"] == pytest.approx(4.762e9, rel=0.01)  # T5-XXL encoder
    assert (sd["text_encoder"], sd["text_encoder_2"]) == (pytest.approx(1.24e8, rel=0.01), pytest.approx(6.95e8, rel=0.01))
