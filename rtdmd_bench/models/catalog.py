"""Model registry entries: the RTDMD systems, their peers at their own published settings, and tiny presets.

No torch import here: ``rtdmd-bench list models`` reads these specs without loading any backend.
Layout under the weights root: base pipelines in ``models/<hub repo name>/`` (a diffusers ``save_pretrained`` /
snapshot folder) shared by every entry on that base, LoRA files in ``loras/<hub repo name>/<file>``.
Published numbers come from USERS.md §4 in the paper's raw units (PickScore ~22-24, CLIP cosine ~0.3, ...).
"""

from __future__ import annotations

import importlib

from rtdmd_bench.models import MODELS
from rtdmd_bench.models.family import FAMILIES
from rtdmd_bench.models.spec import ModelSpec, Published

# Family modules register their FamilySpec when imported. This order is the registration order, which is the
# order the tiny weights are drawn from one random stream: append new families, never reorder.
FAMILY_MODULES = ("rtdmd_bench.models.sd3", "rtdmd_bench.models.flux1", "rtdmd_bench.models.flux2_klein")
for _module in FAMILY_MODULES:
    importlib.import_module(_module)
RTDMD_PAPER = "RTDMD (arXiv 2605.26108), README Harahan/RTDMD"
SENSEFLOW = "SenseFlow README (COCO-5K, 4-step protocol)"
SANA_SPRINT = "SANA-Sprint (arXiv 2503.09641)"
FLOW_GRPO = "Flow-GRPO (arXiv 2505.05470) via Luo-Yihong/DGPO README"
DRAWBENCH_METRICS = ("clipscore", "aesthetic", "pickscore", "hpsv2", "imagereward")
LICENSES = {
    "sd": "Stability AI Community License (base weights)",
    "flux1-dev": "FLUX.1 [dev] Non-Commercial License (base weights)",
    "apache": "Apache-2.0 (base weights)",
    "flux-nc": "FLUX Non-Commercial License (base weights)",
}
RTDMD_LORA_LICENSE = "; RTDMD LoRAs Apache-2.0"
# TODO(weights): the file names inside the Harahan/*-RTDMD hub repos are not verified (the model cards list a
# cold_start/ and an rtdmd/ folder); `cold_start/generator_ema.pt` + `rtdmd/generator_ema.pt` follow the reference's
# inference YAML (checkpoint-15000 / checkpoint-1000 generator_ema.pt). Check with `huggingface-cli scan` before fetching.
LORA_FILES = ("cold_start/generator_ema.pt", "rtdmd/generator_ema.pt")


def _table(paper: str, table: str, nfe: int, values: dict[str, float], prompt_sets: dict[str, str] | None = None,
           note: str = "") -> tuple[Published, ...]:
    """One table row as ``Published`` entries; the prompt set defaults to DrawBench (the RTDMD routing)."""
    sets = prompt_sets or {}
    return tuple(Published(paper=paper, table=table, prompt_set=sets.get(m, "drawbench"), metric=m, value=v, nfe=nfe,
                           note=note) for m, v in values.items())


def _row(names: tuple[str, ...], values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(names, values, strict=True))


RTDMD_T2_METRICS = ("imagereward", "clipscore", "aesthetic", "pickscore", "hpsv2", "hpsv3", "geneval", "geneval2", "ocr")
RTDMD_T2_SETS = {"hpsv3": "hpsv3", "geneval": "geneval", "geneval2": "geneval2", "ocr": "ocr"}
RTDMD_CAP = "prompt sets per the reference reward_dataset_map; the README does not say whether the 64-prompt cap applied"


def _rtdmd_t2(values: tuple[float, ...], nfe: int) -> tuple[Published, ...]:
    return _table(RTDMD_PAPER, "Table 2 (FLUX.2 4B)", nfe, _row(RTDMD_T2_METRICS, values), RTDMD_T2_SETS, RTDMD_CAP)


def _senseflow(values: tuple[float, float, float, float], nfe: int) -> tuple[Published, ...]:
    sets = dict.fromkeys(("clipscore", "hpsv2", "pickscore", "imagereward"), "coco5k")
    return _table(SENSEFLOW, "main table", nfe, _row(("clipscore", "hpsv2", "pickscore", "imagereward"), values), sets)


def _geneval(value: float, nfe: int, note: str = "") -> tuple[Published, ...]:
    return _table(SANA_SPRINT, "Table 2", nfe, {"geneval": value}, {"geneval": "geneval"}, note)


def _lora(repo: str) -> dict:
    """LoRA stack fields for a ``Harahan/<repo>`` checkpoint pair (cold start, then RL), merged in that order."""
    paths = tuple(f"loras/{repo}/{f}" for f in LORA_FILES)
    return {"lora": paths, "lora_hub": tuple((f"Harahan/{repo}", f, p) for f, p in zip(LORA_FILES, paths))}


def _add(name: str, family: str, hub_id: str, description: str, **kw) -> None:
    weights_dir = kw.pop("weights_dir", f"models/{hub_id.split('/')[-1]}")
    MODELS.add(ModelSpec(name=name, target=FAMILIES.spec(family).target, description=description, family=family,
                         weights_dir=weights_dir, hub_id=hub_id, **kw))


FEW_STEP = {"sampler": "cps", "steps": 4, "step_list": (1000.0, 750.0, 500.0, 250.0), "eta": 0.9, "guidance": 1.0}

# ---------------------------------------------------------------------------------------------- RTDMD
_add("sd35m-rtdmd", "sd35", "stabilityai/stable-diffusion-3.5-medium",
     "SD3.5-Medium + RTDMD LoRAs (cold start + RL), 4-step CPS eta 0.9 at 1024 (no published numbers yet)",
     license=LICENSES["sd"] + RTDMD_LORA_LICENSE, extra=(("max_sequence_length", 128),), **FEW_STEP,
     **_lora("SD35M-RTDMD"))
_add("flux2-rtdmd", "flux2_klein", "black-forest-labs/FLUX.2-klein-4B",
     "FLUX.2-klein 4B + RTDMD LoRAs, 4-step CPS eta 0.9 at 1024 (paper Table 2)",
     license=LICENSES["apache"] + RTDMD_LORA_LICENSE, **FEW_STEP, **_lora("FLUX2-4B-RTDMD"),
     published=_rtdmd_t2((1.3712, 0.3219, 5.7746, 23.9642, 0.3516, 15.5772, 0.9046, 0.2755, 0.6858), 4))
_add("flux2-9b-rtdmd", "flux2_klein", "black-forest-labs/FLUX.2-klein-9B",
     "FLUX.2-klein 9B + RTDMD LoRAs, 4-step CPS eta 0.9 at 1024 (no published numbers yet)",
     license=LICENSES["flux-nc"] + RTDMD_LORA_LICENSE, **FEW_STEP, **_lora("FLUX2-9B-RTDMD"))
_add("flux1-rtdmd", "flux1", "black-forest-labs/FLUX.1-dev",
     "FLUX.1-dev + RTDMD LoRAs, 4-step CPS eta 0.9, guidance embedding 1.0 (no published numbers yet)",
     license=LICENSES["flux1-dev"] + RTDMD_LORA_LICENSE, **FEW_STEP, **_lora("FLUX1-12B-RTDMD"))
_add("sd3m-rtdmd", "sd3", "stabilityai/stable-diffusion-3-medium-diffusers",
     "SD3-Medium + RTDMD LoRAs, 4-step CPS (paper Table 1). TODO(weights): no SD3-M RTDMD checkpoint is released; "
     "put your own LoRAs at the listed paths",
     license=LICENSES["sd"], extra=(("max_sequence_length", 128),), **FEW_STEP,
     lora=tuple(f"loras/SD3M-RTDMD/{f}" for f in LORA_FILES),
     published=_table(RTDMD_PAPER, "Table 1 (SD3-M)", 4, _row(DRAWBENCH_METRICS, (0.3161, 5.9642, 22.8593, 0.3211, 1.3024)),
                      note=RTDMD_CAP))

# ---------------------------------------------------------------------------------------------- baselines
_add("flux2-4b", "flux2_klein", "black-forest-labs/FLUX.2-klein-4B",
     "FLUX.2-klein 4B (distilled), its own 4-step Euler schedule, no CFG (paper Table 2 baseline)",
     license=LICENSES["apache"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0,
     published=_rtdmd_t2((1.0506, 0.2864, 5.2658, 22.7370, 0.2890, 12.9295, 0.7722, 0.2403, 0.6375), 4))
_add("flux2-9b", "flux2_klein", "black-forest-labs/FLUX.2-klein-9B",
     "FLUX.2-klein 9B (distilled), its own 4-step Euler schedule, no CFG (paper Table 2 baseline)",
     license=LICENSES["flux-nc"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0,
     published=_rtdmd_t2((1.1998, 0.2919, 5.3730, 23.0178, 0.2991, 13.2955, 0.7814, 0.3570, 0.7566), 4))
_add("flux2-4b-base", "flux2_klein", "black-forest-labs/FLUX.2-klein-base-4B",
     "FLUX.2-klein-base 4B teacher: 50-step Euler, two-pass CFG 4.0 (paper Table 2 lists NFE 50 = steps)",
     license=LICENSES["apache"], sampler="euler_cfg", steps=50, eta=0.0, guidance=4.0,
     published=_rtdmd_t2((0.8538, 0.2834, 5.3333, 22.3938, 0.2771, 11.7025, 0.7631, 0.2207, 0.6133), 50))
_add("flux2-9b-base", "flux2_klein", "black-forest-labs/FLUX.2-klein-base-9B",
     "FLUX.2-klein-base 9B teacher: 50-step Euler, two-pass CFG 4.0 (paper Table 2)",
     license=LICENSES["flux-nc"], sampler="euler_cfg", steps=50, eta=0.0, guidance=4.0,
     published=_rtdmd_t2((1.0021, 0.2962, 5.2030, 22.6382, 0.2800, 11.6883, 0.7568, 0.3557, 0.7432), 50))
_add("sd35m", "sd35", "stabilityai/stable-diffusion-3.5-medium",
     "SD3.5-Medium teacher: 40-step Euler, CFG 4.5, 512 px (the Flow-GRPO protocol of its published numbers)",
     license=LICENSES["sd"], sampler="euler_cfg", steps=40, eta=0.0, guidance=4.5, height=512, width=512,
     extra=(("max_sequence_length", 128),),
     published=_table(FLOW_GRPO, "main table", 40, {"geneval": 0.63, "ocr": 0.59, "aesthetic": 5.39,
                                                      "imagereward": 0.87, "pickscore": 22.34},
                      {"geneval": "geneval", "ocr": "ocr"}, "512 px, 40 steps, CFG 4.5; NFE reported as steps"))
_add("sd3m", "sd3", "stabilityai/stable-diffusion-3-medium-diffusers",
     "SD3-Medium teacher: 50-step Euler, two-pass CFG 7.0 = 100 NFE (paper Table 1 teacher)",
     license=LICENSES["sd"], sampler="euler_cfg", steps=50, eta=0.0, guidance=7.0,
     extra=(("max_sequence_length", 128),),
     published=_table(RTDMD_PAPER, "Table 1 (SD3-M)", 100,
                      _row(DRAWBENCH_METRICS, (0.2936, 5.5711, 22.3236, 0.2810, 1.0759)), note=RTDMD_CAP)
     + _geneval(0.62, 28, "28 steps in the SANA-Sprint protocol"))
_add("flux1-dev", "flux1", "black-forest-labs/FLUX.1-dev",
     "FLUX.1-dev: 50-step Euler, distilled guidance 3.5 (one forward per step)",
     license=LICENSES["flux1-dev"], sampler="euler_cfg", steps=50, eta=0.0, guidance=3.5,
     published=_senseflow((0.3202, 0.3000, 23.18, 1.1170), 50) + _geneval(0.67, 50))
_add("flux1-schnell", "flux1", "black-forest-labs/FLUX.1-schnell",
     "FLUX.1-schnell: its own 4-step Euler schedule, no guidance",
     license=LICENSES["apache"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0,
     published=_senseflow((0.3264, 0.2962, 22.77, 1.0755), 4) + _geneval(0.71, 4))
_add("sd35-large-turbo", "sd35", "stabilityai/stable-diffusion-3.5-large-turbo",
     "SD3.5-Large-Turbo (LADD): its own 4-step Euler schedule, no CFG",
     license=LICENSES["sd"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0,
     extra=(("max_sequence_length", 128),),
     published=_senseflow((0.3262, 0.2909, 22.89, 1.0116), 4) + _geneval(0.72, 4))

# ---------------------------------------------------------------------------------------------- tiny
TINY = {"tiny": True, "height": 64, "width": 64, "dtype": "float32", "license": "tiny random weights (test only)",
        **FEW_STEP}
for _fam in FAMILIES.in_registration_order():
    if _fam.tiny is not None:
        _add(_fam.tiny.name, _fam.name, f"tiny/{_fam.tiny.name}",
             f"tiny random {_fam.tiny.what}, 64x64, 4-step CPS eta 0.9 (tests only)",
             weights_dir=f"models/{_fam.tiny.name}", extra=(("max_sequence_length", 32),), **TINY)
