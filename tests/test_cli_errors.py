"""The CLI's one error boundary (issue 14): every user mistake is one clear ``error:`` line naming the file or flag
and the fix, exit code 2, no traceback; under torchrun only rank 0 prints. One test per row of the issue's table
that does not need a run folder (those live with the evaluation tests)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app

runner = CliRunner()


def _err(result) -> str:
    return " ".join(result.output.split())


def _eval(*args: str):
    return runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny", *args])


def _one_clear_line(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and needle in _err(result), result.output


def test_markup_in_a_model_name_is_printed_literally(tmp_path):
    res = runner.invoke(app, ["eval", "--model", "[/x]", "--suite", "smoke", "--out", str(tmp_path / "o")])
    _one_clear_line(res, "unknown model '[/x]'")


def test_module_attr_that_is_not_a_generator(tmp_path):
    res = runner.invoke(app, ["eval", "--model", "os:system", "--suite", "smoke", "--out", str(tmp_path / "o")])
    _one_clear_line(res, "'os:system' is not a generator")


@pytest.mark.parametrize(("args", "needle"), [
    (["-k", "0"], "--samples-per-prompt (-k) must be >= 1, got 0"),
    (["--set", "overrides.steps=-2"], "steps must be >= 1, got -2"),
    (["--set", "overrides.steps=0"], "steps must be >= 1, got 0"),
    (["--set", "overrides.eta=-0.5"], "eta must be in [0, 1]"),
    (["--set", "overrides.guidance=.nan"], "guidance must be a finite number > 0"),
    (["--set", "overrides.height=7"], "height=7 is not a positive multiple of 16"),
    (["--dtype", "float64"], "--dtype 'float64' is not supported"),
    (["--device", "banana"], "--device 'banana' is not a device"),
    (["--device", "cuda"], "CUDA is not available on this machine"),
])
def test_bad_values_are_refused_before_anything_loads(args, needle, tmp_path, monkeypatch):
    import rtdmd_bench.models

    monkeypatch.setattr(rtdmd_bench.models, "build", lambda *a, **k: pytest.fail("a model was loaded"))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    out = tmp_path / "o"
    res = _eval(*args, "--out", str(out))
    _one_clear_line(res, needle)
    assert not (out / "config.yaml").exists()  # nothing written for a refused run


def test_train_device_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    res = runner.invoke(app, ["train", "--stage", "1", "--model", "tiny-sd35", "--device", "cuda",
                              "--out", str(tmp_path / "t")])
    _one_clear_line(res, "CUDA is not available")


def test_torchrun_ranks_other_than_0_stay_silent_with_the_same_code(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    res = _eval("-k", "0", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and res.output.strip() == ""


def test_disk_full_names_the_file_and_says_the_run_resumes(tmp_path, monkeypatch):
    import rtdmd_bench.suites

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/prompts/smoke.txt")

    monkeypatch.setattr(rtdmd_bench.suites, "import_suite", full)
    res = runner.invoke(app, ["prompts", "import", "smoke", str(tmp_path)])
    _one_clear_line(res, "the disk is full while writing /data/prompts/smoke.txt")
    assert "resumes" in _err(res)


def test_binary_prompt_file_names_the_file(tmp_path):
    bad = tmp_path / "prompts.txt"
    bad.write_bytes(b"\x00\xff\xfe binary")
    res = runner.invoke(app, ["prompts", "import", "drawbench", str(bad)])
    _one_clear_line(res, str(bad))


def test_missing_or_truncated_weight_shard_is_named(tiny_weights, tmp_path):
    from rtdmd_bench.models import build
    from rtdmd_bench.weights import MissingWeightsError

    root = tmp_path / "root"
    shutil.copytree(Path(tiny_weights) / "models" / "tiny-flux2", root / "models" / "tiny-flux2")
    shard = next((root / "models" / "tiny-flux2" / "transformer").glob("*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(MissingWeightsError, match=r"could not load 'tiny-flux2' from .*weights fetch tiny-flux2"):
        build("tiny-flux2", root)
    shard.unlink()
    with pytest.raises(MissingWeightsError, match="could not load 'tiny-flux2'"):
        build("tiny-flux2", root)


def test_a_pickle_named_safetensors_lora_is_named(tiny_weights, tmp_path):
    import torch

    from rtdmd_bench.models import build
    from rtdmd_bench.models.lora import LoraError

    fake = tmp_path / "lora.safetensors"
    torch.save({"a.lora_A.weight": torch.ones(1)}, fake)
    with pytest.raises(LoraError, match=f"LoRA {fake} is not a readable .safetensors file"):
        build("tiny-flux2", tiny_weights, lora=[str(fake)])


def test_reward_suite_mismatch_is_refused_before_generation(tmp_path):
    out = tmp_path / "o"
    res = _eval("--rewards", "geneval", "--out", str(out))
    _one_clear_line(res, "reward 'geneval' reads the per-prompt field(s) ['include'], which suite 'smoke' does not have")
    assert not (out / "images").exists()
