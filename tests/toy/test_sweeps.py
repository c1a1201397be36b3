"""The β and dimension sweeps (quick schedules), the fitted law, the meter validation and the generated docs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rtdmd_bench.toy import bench, report, sweeps


@pytest.fixture(scope="module")
def sweep_docs():
    """One quick seed of each sweep: calibrated mode at β = 1 on both rewards; paper weights at d ∈ {2, 3}."""
    torch.set_num_threads(1)
    cfg = bench.quick_config()
    beta = sweeps.beta_sweep(cfg, betas=(1.0,), seeds=1)
    dim = sweeps.dim_sweep(cfg, dims=(2, 3), scales=(1.0, 2.0), seeds=1)
    return cfg, beta, dim


@pytest.mark.slow
def test_beta_sweep_document(sweep_docs):
    _, doc, _ = sweep_docs
    assert set(doc["cells"]) == {"bump", "linear"} and doc["criteria"] == sweeps.CRITERIA
    for cell in (doc["cells"]["bump"]["1.0"], doc["cells"]["linear"]["1.0"]):
        m = cell["metrics"]
        for crit, limit in sweeps.CRITERIA.items():
            assert cell["pass"][crit] == (m[crit]["mean"] <= limit)
        assert m["meter_beta"]["mean"] == pytest.approx(1.0)  # the calibrated mode's β is its config value
        assert 0 < m["tilt_ess_frac"]["mean"] <= 1
        assert m["mmd_over_floor"]["mean"] == pytest.approx(m["mmd_tilted"]["mean"] / cell["floor"])
    assert doc["cells"]["linear"]["1.0"]["exact_reward"] > 0 > doc["cells"]["bump"]["1.0"]["exact_reward"]


def test_dim_sweep_document(sweep_docs):
    _, _, doc = sweep_docs
    assert len(doc["points"]) == 4 and len(doc["stage1"]) == 2
    by = {(p["dim"], p["scale"]): p for p in doc["points"]}
    # the reward's std under p scales with the reward scale and does not depend on the detail coordinates
    assert by[(2, 2.0)]["sigma_r"] == pytest.approx(2 * by[(2, 1.0)]["sigma_r"], rel=0.02)
    assert by[(3, 1.0)]["sigma_r"] == pytest.approx(by[(2, 1.0)]["sigma_r"], rel=0.02)
    assert all(math.isfinite(p["meter_beta"]) and p["meter_beta"] > 0 for p in doc["points"])
    assert set(doc["fit"]["image"]) == set(sweeps.IMAGE_LATENT_DIMS)


def test_fit_law_recovers_a_known_power_law():
    g = torch.Generator().manual_seed(0)
    pts = [{"dim": d, "scale": c, "seed": s, "sigma_r": 0.5 * c,
            "beta_eff": 3.0 * d**0.4 * c**-1.0 * math.exp(0.05 * float(torch.randn(1, generator=g)))}
           for d in (2, 8, 32, 128) for c in (1.0, 4.0) for s in range(3)]
    fit = sweeps.fit_law(pts, seeds=3, n_boot=200)
    assert fit["beta"]["coef"][1] == pytest.approx(0.4, abs=0.03)
    assert fit["beta"]["coef"][2] == pytest.approx(-1.0, abs=0.05)
    lo, hi = fit["beta"]["ci"][1]
    assert lo < 0.4 < hi
    assert fit["beta_sigma"]["coef"][2] == pytest.approx(0.0, abs=0.05)  # β·σ_R is scale-free here
    sd35 = fit["image"]["sd35m"]["beta_sigma"]
    assert sd35["lo"] < 1.5 * 65536**0.4 < sd35["hi"]


def test_meter_validation_by_hand():
    v = sweeps.meter_validation([(2.0, 1.0), (4.0, 2.0), (8.0, 4.0), (-1.0, 3.0)])
    assert v["n"] == 3 and v["log_corr"] == pytest.approx(1.0)
    assert v["median_factor"] == pytest.approx(2.0) and v["mean_log_ratio"] == pytest.approx(math.log(2.0))


def test_docs_are_generated_from_the_json_files(sweep_docs, tmp_path):
    cfg, beta, dim = sweep_docs
    doc, _, timing = bench.run(cfg, ["teacher", "ac_dmd"], seeds=1)
    doc["seeds"], doc["seconds"] = 1, {"wall": 1.0, **{k: v["mean"] for k, v in timing.items()}}
    docs = tmp_path / "docs"
    docs.mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    with pytest.raises(report.DocsInputError, match="toy.json not found"):
        report.write_docs(docs, readme)
    (docs / "toy.json").write_text(json.dumps(doc))
    with pytest.raises(report.DocsInputError, match="no toy section markers"):
        report.write_docs(docs, readme)
    readme.write_text(f"# x\n\n{report.README_BEGIN}\nold\n{report.README_END}\n\n## after\n")
    (docs / "toy_beta.json").write_text(json.dumps(beta))
    (docs / "toy_dim.json").write_text(json.dumps(dim))
    report.write_docs(docs, readme)
    md, text = (docs / "toy.md").read_text(), readme.read_text()
    assert "{{" not in md and "| ac_dmd |" in md
    assert "| bump | 1.0 |" in md and "| 3 | 2 |" in md  # β-sweep and d-sweep tables
    assert "old" not in text and "| ac_dmd |" in text and text.endswith("## after\n")
    report.write_docs(docs, readme)  # idempotent
    assert readme.read_text() == text


def test_fixed_point_ess_falls_with_beta():
    """ESS/N at p̃ = 1/(E_p[e^{−βR}]·E_p[e^{βR}]): 1 at β = 0, falling with β (Jensen: each factor ≥ e^{∓βE R})."""
    import dataclasses

    base = bench.quick_config()
    ess = [sweeps.fixed_point_ess_frac(bench.World(dataclasses.replace(base, beta=b)), n=20_000)
           for b in (0.0, 0.5, 1.0, 2.0)]
    assert ess[0] == pytest.approx(1.0) and ess[1] > ess[2] > ess[3] > 0, ess
