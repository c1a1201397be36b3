"""The README's train recipe runs as written: each command's config validates for the world it launches, stage 1's
output folder is where the stage-2 config loads it from, and the eval line stacks both exported LoRAs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from rtdmd_bench.cli.train import default_run_dir, resolve_config
from rtdmd_bench.suites import suite_spec
from rtdmd_bench.training.registry import STAGES, TRAINERS

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> list[list[str]]:
    block = README.read_text().split("## Train (RTDMD)", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    text = re.sub(r"\\\n\s*", " ", block)
    return [shlex.split(line.split("#", 1)[0]) for line in text.splitlines() if line.split("#", 1)[0].strip()]


def _opt(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_readme_train_recipe_chains_stage1_into_stage2():
    cmds = _commands()
    imports = [c for c in cmds if c[:3] == ["rtdmd-bench", "prompts", "import"]]
    trains = [c for c in cmds if "train" in c and "--stage" in c]
    evals = [c for c in cmds if c[:2] == ["rtdmd-bench", "eval"]]
    assert {c[3] for c in imports} == {"pickapic-train", "geneval-train"}
    assert all(suite_spec(c[3]).split == "train" for c in imports)
    outs = {}
    for argv in trains:
        stage, model = int(_opt(argv, "--stage")[0]), _opt(argv, "--model")[0]
        world = int(_opt(argv, "--nproc_per_node")[0]) if "--nproc_per_node" in argv else 1
        spec, cfg, path = resolve_config(STAGES[stage], model, None, [], None)
        TRAINERS.get(spec.name).validate(cfg, world)  # the launch as written passes every start-up check
        out = _opt(argv, "--out")[0]
        assert Path(out) == default_run_dir(spec.name, cfg, path)  # omitting --out lands in the same folder
        outs[stage] = (out, cfg)
    stage1_out, (_, stage2) = outs[1][0], outs[2]
    assert stage2.lora.generator_init_from == f"{stage1_out}/lora/generator_ema.pt"
    assert stage2.lora.fake_init_from == f"{stage1_out}/lora/fake_score.pt"
    assert stage2.data.prompts == "geneval-train" and outs[1][1].data.prompts == "pickapic-train"
    (ev,) = evals
    assert _opt(ev, "--lora") == [f"{outs[s][0]}/lora/generator_ema.pt" for s in (1, 2)]
