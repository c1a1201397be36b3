"""Quick-mode training runs: every method moves its metric in the right direction; JSON and CLI shapes."""

from __future__ import annotations

import json

import pytest
import torch

from rtdmd_bench.toy import bench
from rtdmd_bench.toy.distill import train_stage1
from rtdmd_bench.toy.finetune import train_stage2
from rtdmd_bench.toy.nets import generate, pretrain

STAGE2 = [m for m, (kind, _, _) in bench.METHODS.items() if kind == "stage2"]


@pytest.fixture(scope="module")
def trained():
    """Quick world, pretrained init and one quick AC-DMD stage 1 (shared by the stage-2 checks)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)  # network inits draw from the global RNG: make them independent of test order
    cfg = bench.quick_config()
    world = bench.World(cfg)
    init = pretrain(world.data, cfg.pretrain_steps, batch=256, lr=cfg.pretrain_lr, seed=0, hidden=cfg.hidden)
    s1 = train_stage1(world.exact_teacher, init, cfg.stage1, "stage1_acdmd", list(cfg.sigmas), cfg.eta, seed=0)
    return cfg, world, init, s1


def _metric(world, net, cfg, key):
    return _metrics(world, net, cfg)[key]


@pytest.mark.parametrize("ambient", [True, False], ids=["ac_dmd", "dmd"])
def test_stage1_moves_towards_the_teacher(trained, ambient):
    cfg, world, init, s1 = trained
    if not ambient:
        recipe, values = bench.method_values(cfg, "dmd")
        s1 = train_stage1(world.exact_teacher, init, values, recipe, list(cfg.sigmas), cfg.eta, seed=0)
    before, after = _metric(world, init, cfg, "mmd_teacher"), _metric(world, s1.generator, cfg, "mmd_teacher")
    assert after < 0.8 * before, (before, after)


@pytest.fixture(scope="module")
def stage2_metrics(trained):
    """Every stage-2 method trained once (quick) from the shared stage 1: {method: metrics}, plus "stage1"."""
    cfg, world, _, s1 = trained
    out = {"stage1": _metrics(world, s1.generator, cfg)}
    for method in STAGE2:
        torch.manual_seed(1)
        recipe, values = bench.method_values(cfg, method)
        res = train_stage2(world.exact_teacher, s1.generator, s1.fake, world.reward, values, recipe,
                           list(cfg.sigmas), cfg.eta, 0)
        out[method] = {**_metrics(world, res.generator, cfg), "rows": res.metrics}
    return out


def _metrics(world, net, cfg):
    g = torch.Generator().manual_seed(99)
    return world.evaluate(generate(net, 1500, g, list(cfg.sigmas), cfg.eta), g)


@pytest.mark.slow  # its fixture trains every stage-2 method (quick schedule)
@pytest.mark.parametrize("method", ["rtdmd", "grpo", "bp", "rtdmd_pg_all_steps", "rtdmd_no_bp", "rtdmd_no_dm",
                                    "rtdmd_no_consistency"])
def test_reward_driven_methods_raise_the_reward(stage2_metrics, method):
    before, after = stage2_metrics["stage1"]["mean_reward"], stage2_metrics[method]["mean_reward"]
    assert after > before + 0.1, (method, before, after)


def test_no_pg_is_restrained_by_the_dm_term(stage2_metrics):
    """Paper weights without the policy gradient: the DM term (1e-3) holds BP (1e-4) back; BP alone runs off."""
    before, after, bp = stage2_metrics["stage1"], stage2_metrics["rtdmd_no_pg"], stage2_metrics["bp"]
    assert after["mean_reward"] - before["mean_reward"] < bp["mean_reward"] - before["mean_reward"], (after, bp)
    assert after["mmd_teacher"] < bp["mmd_teacher"], (after, bp)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and k != "rewards" else {f"{prefix}{k}": v})
    return out


# the paper's ablations (each a single change of rtdmd's config) and the switch each name must produce
ABLATIONS = {"rtdmd_pg_all_steps": {"policy.step_selection": False}, "rtdmd_no_pg": {"policy.enabled": False},
             "rtdmd_no_bp": {"bp.enabled": False}, "rtdmd_no_dm": {"aux.loss": "none"},
             "rtdmd_no_consistency": {"aux.consistency.enabled": False}}


def test_ablation_names_map_to_their_config_switches():
    """Read the recipe config each ablation name produces: it differs from rtdmd's in exactly its switch, and the
    paper's "w/o SubGRPO" trains the policy gradient on every stochastic step (rtdmd: 2 of the 3)."""
    from rtdmd_bench.trainers.stage2_rtdmd import trained_steps

    from rtdmd_bench.config import to_dict
    from rtdmd_bench.toy.distill import recipe_config

    cfg = bench.BenchConfig()
    _, base = recipe_config(*bench.method_values(cfg, "rtdmd"), seed=0)
    flat_base = _flat(to_dict(base))
    built = {}
    for name, switch in ABLATIONS.items():
        _, built[name] = recipe_config(*bench.method_values(cfg, name), seed=0)
        flat = _flat(to_dict(built[name]))
        assert {k: v for k, v in flat.items() if flat_base[k] != v} == switch, name
    n_steps = len(cfg.sigmas) - 1
    for epoch in range(5):
        assert trained_steps(built["rtdmd_pg_all_steps"], 0, epoch, n_steps) == ([0, 1, 2], [0, 1, 2, 3])
        assert len(trained_steps(base, 0, epoch, n_steps)[0]) == 2
        assert trained_steps(built["rtdmd_no_pg"], 0, epoch, n_steps) == ([], [3])
    assert "rtdmd_no_subgrpo" not in bench.METHODS  # the old, mislabelled name (it removed the policy gradient)


def test_beta_meter_in_the_recipe_metrics(stage2_metrics):
    """metrics.jsonl carries the β-meter every epoch: exactly the configured β for the exact-KL and calibrated
    modes, a finite positive reading for the paper's weights, none without a DM term."""
    beta = bench.quick_config().beta
    for method in ("rtdmd_exact_kl", "rtdmd_calibrated"):
        rows = stage2_metrics[method]["rows"]
        steps = bench.method_values(bench.quick_config(), method)[1].get("train.steps")  # calibrated: its own
        assert len(rows) == (steps or bench.quick_config().stage2["train.steps"])
        assert all(r["beta_meter/update"] == pytest.approx(beta, rel=1e-4) for r in rows), method
    for r in stage2_metrics["rtdmd"]["rows"]:
        assert r["beta_meter/update"] > 0 and r["beta_meter/state"] > 0 and r["grad_norm/term/pg"] > 0
    assert all(r["beta_meter/update"] is None for r in stage2_metrics["grpo"]["rows"])  # no DM: no finite β


def test_exact_kl_tilts_less_than_grpo(stage2_metrics):
    """The exact-KL weighting keeps the KL-to-teacher force: less reward hacking than pure GRPO."""
    exact, grpo = stage2_metrics["rtdmd_exact_kl"], stage2_metrics["grpo"]
    assert exact["mean_reward"] < grpo["mean_reward"]
    assert exact["mmd_teacher"] < grpo["mmd_teacher"]


def test_teacher_row_is_at_the_floor():
    cfg = bench.quick_config()
    world = bench.World(cfg)
    doc, samples, _ = bench.run(cfg, ["teacher"], seeds=1)
    floor = doc["noise_floor"]["mmd_teacher"]
    assert doc["methods"]["teacher"]["mmd_teacher"]["mean"] < 2 * floor
    assert set(doc) == {"config", "noise_floor", "methods"}
    assert set(doc["methods"]["teacher"]) == set(bench.METRICS)
    assert samples["teacher"].shape == (cfg.n_eval, 2)
    assert world.tilted.weights.sum().item() == pytest.approx(1.0)


def test_cli_writes_json_and_plot(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from rtdmd_bench.cli.toy import toy

    app = typer.Typer()
    app.command()(toy)
    out, png = tmp_path / "toy.json", tmp_path / "toy.png"
    res = CliRunner().invoke(app, ["--methods", "teacher", "--seeds", "2", "--quick", "--json", str(out),
                                   "--plot", str(png)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert set(doc["noise_floor"]) == {"mmd_teacher", "mmd_tilted"}
    assert doc["methods"]["teacher"]["effective_beta"]["std"] >= 0
    assert png.stat().st_size > 1000
    bad = CliRunner().invoke(app, ["--methods", "nope", "--quick"])
    assert bad.exit_code != 0
    bad_teacher = CliRunner().invoke(app, ["--teacher", "nope", "--quick"])
    assert bad_teacher.exit_code != 0 and "unknown teacher" in bad_teacher.output
    bad_sweep = CliRunner().invoke(app, ["--sweep", "nope", "--quick"])
    assert bad_sweep.exit_code != 0 and "unknown sweep" in bad_sweep.output
    monkeypatch.chdir(tmp_path)  # no docs/toy.json here: one error line, exit 2
    no_docs = CliRunner().invoke(app, ["--docs"])
    assert no_docs.exit_code == 2 and "toy.json not found" in no_docs.output
    d3 = CliRunner().invoke(app, ["--methods", "teacher", "--seeds", "1", "--quick", "--dim", "3", "--json",
                                  str(tmp_path / "d3.json"), "--plot", str(tmp_path / "d3.png")])
    assert d3.exit_code == 0, d3.output
    assert json.loads((tmp_path / "d3.json").read_text())["config"]["world"]["dim"] == 3


def test_imperfect_teacher_runs_and_bad_teacher_fails():
    """``teacher="mlp"``: the teacher row is the pretrained MLP's many-step sampler, and stage 1 distils from it."""
    import dataclasses

    cfg = dataclasses.replace(bench.quick_config(), teacher="mlp")
    doc, _, _ = bench.run(cfg, ["teacher", "ac_dmd"], seeds=1)
    exact, _, _ = bench.run(bench.quick_config(), ["teacher"], seeds=1)
    mlp_row, exact_row = doc["methods"]["teacher"]["mmd_teacher"]["mean"], exact["methods"]["teacher"]["mmd_teacher"]["mean"]
    assert mlp_row > exact_row  # the quick MLP teacher is visibly imperfect: its own error is measured
    assert doc["config"]["teacher"] == "mlp"
    assert doc["methods"]["ac_dmd"]["mmd_teacher"]["mean"] > 0
    with pytest.raises(ValueError, match="unknown toy teacher 'mpl'"):
        bench.World(dataclasses.replace(bench.quick_config(), teacher="mpl"))


def test_seeds_in_worker_processes_give_the_same_results():
    """``--workers``: every (seed, method) cell seeds itself, so training them in worker processes changes nothing."""
    cfg = bench.quick_config()
    serial, _, _ = bench.run(cfg, ["teacher", "grpo"], seeds=2)
    parallel, _, _ = bench.run(cfg, ["teacher", "grpo"], seeds=2, workers=2)
    assert parallel == serial
