"""Model registry entries: the RTDMD systems, their peers at their own published settings, and tiny presets.

No torch import here: ``rtdmd-bench list models`` reads these specs without loading any backend.
Layout under the weights root: base pipelines in ``models/<hub repo name>/`` (a diffusers ``save_pretrained`` /
snapshot folder) shared by every entry on that base, LoRA files in ``loras/<hub repo name>/<file>``.
The numbers each entry should reproduce live once, in ``leaderboards/published.yaml`` (rows name the registry
models they belong to; ``rtdmd_bench.published.published_for``).
"""

from __future__ import annotations

import importlib

from rtdmd_bench.models import MODELS
from rtdmd_bench.models.family import FAMILIES
from rtdmd_bench.models.spec import ModelSpec

# Family modules register their FamilySpec when imported. This order is the registration order, which is the
# order the tiny weights are drawn from one random stream: append new families, never reorder.
FAMILY_MODULES = ("rtdmd_bench.models.sd3", "rtdmd_bench.models.flux1", "rtdmd_bench.models.flux2_klein")
for _module in FAMILY_MODULES:
    importlib.import_module(_module)
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
     license=LICENSES["apache"] + RTDMD_LORA_LICENSE, **FEW_STEP, **_lora("FLUX2-4B-RTDMD"))
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
     lora=tuple(f"loras/SD3M-RTDMD/{f}" for f in LORA_FILES))

# ---------------------------------------------------------------------------------------------- baselines
_add("flux2-4b", "flux2_klein", "black-forest-labs/FLUX.2-klein-4B",
     "FLUX.2-klein 4B (distilled), its own 4-step Euler schedule, no CFG (paper Table 2 baseline)",
     license=LICENSES["apache"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0)
_add("flux2-9b", "flux2_klein", "black-forest-labs/FLUX.2-klein-9B",
     "FLUX.2-klein 9B (distilled), its own 4-step Euler schedule, no CFG (paper Table 2 baseline)",
     license=LICENSES["flux-nc"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0)
_add("flux2-4b-base", "flux2_klein", "black-forest-labs/FLUX.2-klein-base-4B",
     "FLUX.2-klein-base 4B teacher: 50-step Euler, two-pass CFG 4.0 (paper Table 2 lists NFE 50 = steps)",
     license=LICENSES["apache"], sampler="euler_cfg", steps=50, eta=0.0, guidance=4.0)
_add("flux2-9b-base", "flux2_klein", "black-forest-labs/FLUX.2-klein-base-9B",
     "FLUX.2-klein-base 9B teacher: 50-step Euler, two-pass CFG 4.0 (paper Table 2)",
     license=LICENSES["flux-nc"], sampler="euler_cfg", steps=50, eta=0.0, guidance=4.0)
_add("sd35m", "sd35", "stabilityai/stable-diffusion-3.5-medium",
     "SD3.5-Medium teacher: 40-step Euler, CFG 4.5, 512 px (the Flow-GRPO protocol of its published numbers)",
     license=LICENSES["sd"], sampler="euler_cfg", steps=40, eta=0.0, guidance=4.5, height=512, width=512,
     extra=(("max_sequence_length", 128),))
_add("sd3m", "sd3", "stabilityai/stable-diffusion-3-medium-diffusers",
     "SD3-Medium teacher: 50-step Euler, two-pass CFG 7.0 = 100 NFE (paper Table 1 teacher)",
     license=LICENSES["sd"], sampler="euler_cfg", steps=50, eta=0.0, guidance=7.0,
     extra=(("max_sequence_length", 128),))
_add("flux1-dev", "flux1", "black-forest-labs/FLUX.1-dev",
     "FLUX.1-dev: 50-step Euler, distilled guidance 3.5 (one forward per step)",
     license=LICENSES["flux1-dev"], sampler="euler_cfg", steps=50, eta=0.0, guidance=3.5)
_add("flux1-schnell", "flux1", "black-forest-labs/FLUX.1-schnell",
     "FLUX.1-schnell: its own 4-step Euler schedule, no guidance",
     license=LICENSES["apache"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0)
_add("sd35-large-turbo", "sd35", "stabilityai/stable-diffusion-3.5-large-turbo",
     "SD3.5-Large-Turbo (LADD): its own 4-step Euler schedule, no CFG",
     license=LICENSES["sd"], sampler="euler_cfg", steps=4, eta=0.0, guidance=1.0,
     extra=(("max_sequence_length", 128),))

# ---------------------------------------------------------------------------------------------- tiny
TINY = {"tiny": True, "height": 64, "width": 64, "dtype": "float32", "license": "tiny random weights (test only)",
        **FEW_STEP}
for _fam in FAMILIES.in_registration_order():
    if _fam.tiny is not None:
        _add(_fam.tiny.name, _fam.name, f"tiny/{_fam.tiny.name}",
             f"tiny random {_fam.tiny.what}, 64x64, 4-step CPS eta 0.9 (tests only)",
             weights_dir=f"models/{_fam.tiny.name}", extra=(("max_sequence_length", 32),), **TINY)
