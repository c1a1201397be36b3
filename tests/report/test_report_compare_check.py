"""compare and check on synthetic runs: paired differences, top prompts, tags, McNemar, mismatch refusal,
the reward-hacking flag, and the gate's exit codes through the Typer commands."""

from __future__ import annotations

import json
import shutil

import pytest
import typer
from typer.testing import CliRunner

from rtdmd_bench.cli.report import check, compare, leaderboard, report
from rtdmd_bench.report.compare import MismatchError, compare_runs
from rtdmd_bench.report.runs import load_run

app = typer.Typer()
for command in (leaderboard, compare, check, report):
    app.command()(command)
cli = CliRunner()


def invoke(*args: str):
    return cli.invoke(app, [str(a) for a in args])


def test_compare_finds_improved_and_regressed_prompts(make_run, shift):
    a = make_run("a", n_prompts=12)
    b = make_run("b", n_prompts=12, score=lambda s, p, k, r: shift({"pickscore": 1.0}, {0, 1})(s, p, k, r)
                 - (0.5 if r == "pickscore" and p == 5 else 0.0))
    cmp = compare_runs(load_run(a), load_run(b), top=2)
    pick = next(d for d in cmp.rewards if d.key == "smoke/pickscore")
    assert [p.prompt_id for p in pick.improved] == [0, 1] and [p.prompt_id for p in pick.regressed] == [5]
    assert pick.improved[0].gain == pytest.approx(1.0) and pick.regressed[0].gain == pytest.approx(-0.5)
    assert pick.stats.diff == pytest.approx((1.0 + 1.0 - 0.5) / 12)
    assert pick.improved[0].b - pick.improved[0].a == pytest.approx(1.0)
    clip = next(d for d in cmp.rewards if d.key == "smoke/clipscore")
    assert clip.stats.diff == 0.0 and clip.verdict == "no significant change" and not clip.improved
    assert {t.tag for t in pick.tags} == {"colors", "counting", "position"}
    colors = next(t for t in pick.tags if t.tag == "colors")  # prompts 0, 3, 6, 9: one gained 1.0
    assert colors.stats.n == 4 and colors.stats.diff == pytest.approx(0.25)


def test_lower_is_better_reward_gain_is_oriented(make_run, shift):
    a = make_run("a", rewards=("blur",))
    b = make_run("b", rewards=("blur",), score=shift({"blur": 0.3}))
    diff = compare_runs(load_run(a), load_run(b)).rewards[0]
    assert diff.stats.diff == pytest.approx(0.3) and diff.gain == pytest.approx(-0.3)
    assert diff.verdict == "worse" and diff.regressed and not diff.improved


def test_mcnemar_on_binary_rewards(make_run):
    a = make_run("a", rewards=("geneval",), n_prompts=8, score=lambda s, p, k, r: 0.0)
    b = make_run("b", rewards=("geneval",), n_prompts=8, score=lambda s, p, k, r: 1.0 if p < 3 else 0.0)
    diff = compare_runs(load_run(a), load_run(b)).rewards[0]
    assert (diff.mcnemar.a_only, diff.mcnemar.b_only) == (0, 6)  # 3 prompts x 2 images gained
    assert diff.mcnemar.p_exact == pytest.approx(2 / 64)


@pytest.mark.parametrize("change, needle", [
    ({"seed": 1}, "seed"),
    ({"height": 128}, "resolution"),
    ({"suite": "other"}, "suites"),
])
def test_compare_refuses_protocol_mismatch_unless_allowed(make_run, change, needle, tmp_path):
    a = make_run("a")
    b = make_run("b", **change)
    with pytest.raises(MismatchError, match=needle):
        compare_runs(load_run(a), load_run(b))
    result = invoke("compare", a, b)
    assert result.exit_code == 2 and needle in result.output and "--allow-mismatch" in result.output
    if change.get("suite") is None:
        ok = invoke("compare", a, b, "--allow-mismatch", "--json", tmp_path / "c.json")
        assert ok.exit_code == 0, ok.output
        assert "WARNING: compared despite" in ok.output
        assert json.loads((tmp_path / "c.json").read_text())["mismatches"]


def test_reward_hacking_flag_proxy_up_held_out_down(make_run, shift, tmp_path):
    a = make_run("a")
    b = make_run("b", score=shift({"pickscore": 0.4, "clipscore": -0.01}), training_rewards=["pickscore", "hpsv2"])
    result = invoke("compare", a, b, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    assert "FLAG: proxy up, held-out down" in result.output and "not evaluated in these runs: hpsv2" in result.output
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["hacking"]["flagged"] is True
    assert data["hacking"]["proxies_up"] == ["smoke/pickscore"]
    assert data["hacking"]["held_out_down"] == ["smoke/clipscore"]
    c = make_run("c", score=shift({"pickscore": 0.4}), training_rewards=["pickscore"])
    assert "No flag" in invoke("compare", a, c).output


def test_check_exit_codes(make_run, shift, tmp_path):
    base = make_run("base")
    same = make_run("same")
    worse = make_run("worse", score=shift({"pickscore": -0.3}))
    result = invoke("check", same, "--baseline", base)
    assert result.exit_code == 0 and "PASS" in result.output, result.output
    result = invoke("check", worse, "--baseline", base)
    assert result.exit_code == 1 and "smoke/pickscore" in result.output and "regressed" in result.output
    assert invoke("check", worse, "--baseline", base, "--tolerance", "pickscore=0.5").exit_code == 0
    assert invoke("check", worse, "--baseline", base / "results.json",
                  "--tolerance", "smoke/pickscore=0.1").exit_code == 1
    assert invoke("check", worse, "--baseline", base, "--tolerance", "pikscore=0.5").exit_code == 2
    assert invoke("check", worse, "--baseline", base, "--tolerance", "pickscore").exit_code == 2
    assert invoke("check", worse, "--baseline", tmp_path / "nowhere").exit_code == 2
    assert invoke("check", make_run("seed", seed=3), "--baseline", base).exit_code == 2


def test_check_missing_reward_and_unpaired_baseline(make_run, shift, tmp_path):
    base = make_run("base")
    fewer = make_run("fewer", rewards=("clipscore",))
    result = invoke("check", fewer, "--baseline", base)
    assert result.exit_code == 1 and "smoke/pickscore: missing from the run" in result.output
    results_only = tmp_path / "baseline-results-only"
    results_only.mkdir()
    shutil.copy(base / "results.json", results_only / "results.json")
    result = invoke("check", make_run("same"), "--baseline", results_only)
    assert result.exit_code == 0 and "UNPAIRED" in result.output
    result = invoke("check", make_run("bad", score=shift({"clipscore": -0.05})), "--baseline", results_only)
    assert result.exit_code == 1 and "smoke/clipscore" in result.output


def test_check_needs_every_baseline_image_unless_partial(make_run, shift):
    """A run with 3 of the baseline's 6 prompts, or 1 of its 2 samples per prompt, is not a pass: exit 2 with the
    coverage, or (``--allow-partial``) a gate on the images both hold, with the coverage printed."""
    base = make_run("base")
    for name, kwargs, covered in (("half", {"n_prompts": 3}, "6/12"), ("one", {"images_per_prompt": 1}, "6/12")):
        run = make_run(name, **kwargs)
        refused = invoke("check", run, "--baseline", base)
        assert refused.exit_code == 2 and "does not hold every baseline image" in " ".join(refused.output.split())
        partial = invoke("check", run, "--baseline", base, "--allow-partial")
        assert partial.exit_code == 0 and f"coverage: smoke {covered} baseline images" in partial.output
    worse = make_run("worse", n_prompts=3, score=shift({"pickscore": -0.3}))
    assert invoke("check", worse, "--baseline", base, "--allow-partial").exit_code == 1
    full = invoke("check", make_run("same"), "--baseline", base)
    assert full.exit_code == 0 and "coverage: smoke 12/12 baseline images" in full.output


def test_leaderboard_check_detects_stale_file(make_run, tmp_path):
    run = make_run("a")
    out = tmp_path / "README.md"
    assert invoke("leaderboard", run, "--out", out, "--no-published").exit_code == 0
    assert invoke("leaderboard", run, "--out", out, "--check", "--no-published").exit_code == 0
    out.write_text(out.read_text() + "edited by hand\n")
    result = invoke("leaderboard", run, "--out", out, "--check", "--no-published")
    assert result.exit_code == 1 and "stale" in result.output and "edited by hand" in result.output


def test_tiny_vs_real_is_a_mismatch_and_tiny_is_announced(make_run):
    from rtdmd_bench.report.compare import MismatchError, compare_runs
    from rtdmd_bench.report.compare_render import render_comparison
    from rtdmd_bench.report.runs import load_run

    real = load_run(make_run("real"))
    tiny = load_run(make_run("tinyrun", tiny=True))
    with pytest.raises(MismatchError, match="tiny random weights"):
        compare_runs(real, tiny)
    text = render_comparison(compare_runs(tiny, tiny))
    assert "TINY RANDOM WEIGHTS" in text


def test_leaderboard_skips_folders_that_are_not_eval_runs(make_run, tmp_path):
    good = make_run("good")
    failed = tmp_path / "failed-eval"
    (failed / "images").mkdir(parents=True)
    train = tmp_path / "train-run"
    (train / "checkpoints").mkdir(parents=True)
    result = invoke("leaderboard", good, failed, train, "--out", tmp_path / "lb.md", "--no-published")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"skipped {failed}: not a finished evaluation run" in text and f"skipped {train}: a training run" in text
    assert "good" in (tmp_path / "lb.md").read_text()
