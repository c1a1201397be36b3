"""Registry entries: every name the generators issue asks for, torch-free import, published provenance."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rtdmd_bench.models import MODELS
from rtdmd_bench.models.family import FAMILIES

REAL = ["sd35m-rtdmd", "flux2-rtdmd", "flux2-9b-rtdmd", "flux1-rtdmd", "sd3m-rtdmd", "flux2-4b", "flux2-9b",
        "flux2-4b-base", "flux2-9b-base", "sd35m", "sd3m", "flux1-dev", "flux1-schnell", "sd35-large-turbo"]
TINY = ["tiny-sd3", "tiny-sd35", "tiny-flux1", "tiny-flux2"]


def test_all_names_registered():
    assert set(REAL + TINY) <= set(MODELS.names())


@pytest.mark.parametrize("name", REAL + TINY)
def test_entry_is_complete(name):
    s = MODELS.spec(name)
    assert s.target == FAMILIES.spec(s.family).target and s.weights_dir and s.hub_id and s.license
    assert s.sampler in ("cps", "euler_cfg") and s.steps > 0
    if s.sampler == "cps":
        assert len(s.step_list) == s.steps and s.eta == 0.9 and s.guidance == 1.0
    assert s.tiny == name.startswith("tiny-")
    assert len(s.lora_hub) in (0, len(s.lora))


def test_rtdmd_inference_protocol():
    for name in ("sd35m-rtdmd", "flux2-rtdmd", "flux2-9b-rtdmd", "flux1-rtdmd", "sd3m-rtdmd"):
        s = MODELS.spec(name)
        assert (s.height, s.width, s.steps, s.step_list, s.eta) == (1024, 1024, 4, (1000.0, 750.0, 500.0, 250.0), 0.9)
        assert len(s.lora) == 2 and s.nfe == 4


def test_published_numbers_carry_provenance():
    from rtdmd_bench.published import published_for

    pub = {p.metric: p for p in published_for("flux2-rtdmd")}
    assert pub["pickscore"].value == 23.9642 and pub["pickscore"].prompt_set == "drawbench" and pub["pickscore"].nfe == 4
    assert pub["geneval"].value == 0.9046 and pub["geneval"].prompt_set == "geneval"
    t1 = {p.metric: p.value for p in published_for("sd3m") if p.table.startswith("RTDMD Table 1")}
    assert t1 == {"clipscore": 0.2936, "aesthetic": 5.5711, "pickscore": 22.3236, "hpsv2": 0.2810, "imagereward": 1.0759}
    assert MODELS.spec("sd3m").nfe == 100 and MODELS.spec("flux1-dev").nfe == 50  # distilled guidance: one pass


def test_catalog_import_is_torch_free():
    code = "import sys, rtdmd_bench.models as m; m.MODELS.spec('flux2-rtdmd'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
