"""Export to diffusers: ``Pipeline.load_lora_weights(DIR)`` + ``fuse_lora()`` equals the harness merge on every tiny
family (max |diff| <= 1e-6, identical images); the merged-transformer folder; scale; hub and relative refs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from rtdmd_bench.models import MODELS, build
from rtdmd_bench.models.family import FAMILIES
from rtdmd_bench.models.lora import LoraError
from rtdmd_bench.models.lora_export import WEIGHT_NAME, export_diffusers, export_merged
from rtdmd_bench.training.lora import export_lora, inject_lora, lora_targets, training_record

TINY = [f.tiny.name for f in FAMILIES.in_registration_order() if f.tiny is not None]


def trained_lora(gen, family: str, folder: Path, rank: int = 4, alpha: float = 8.0, seed: int = 0) -> Path:
    """A LoRA exported the way the trainers do (peft injection on the family's targets, nonzero B)."""
    targets = lora_targets(family, gen.transformer)
    net = inject_lora(copy.deepcopy(gen.transformer), targets, rank=rank, alpha=alpha, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    state = {n: p for n, p in net.named_parameters() if p.requires_grad}
    return export_lora(folder / "generator_ema.pt", state, rank, alpha, targets,
                       training=training_record(2, "stage2_rtdmd", {"pickscore": 1.0}, gen.spec.name, 1))


def _weights(net) -> dict[str, torch.Tensor]:
    return {k.replace(".base_layer", ""): v for k, v in net.state_dict().items() if "lora_" not in k}


def _merged(base, loras, records: list | None = None) -> torch.nn.Module:
    """A copy of ``base``'s transformer with ``loras`` merged by the harness (what ``build(..., lora=...)`` does)."""
    from rtdmd_bench.models.lora import merge_lora_stack

    net = copy.deepcopy(base.transformer)
    (records if records is not None else []).extend(merge_lora_stack(net, loras, family=base.spec.family))
    return net


def _generate_with(gen, transformer, prompts, seeds):
    """``gen``'s images with another transformer of the same architecture swapped in (restored afterwards)."""
    own = gen.transformer
    gen.transformer = gen.pipe.transformer = transformer
    try:
        return gen.generate(prompts, seeds)
    finally:
        gen.transformer = gen.pipe.transformer = own


@pytest.mark.parametrize("name", TINY)
def test_diffusers_load_and_fuse_equals_the_harness_merge(tiny_models, generators, tmp_path, name):
    import diffusers

    base = generators[name]
    pt = trained_lora(base, base.spec.family, tmp_path / "lora")
    out = export_diffusers(pt, tmp_path / "diffusers")
    assert out.name == WEIGHT_NAME and (out.parent / "training.json").is_file()
    merged = _merged(base, [pt])

    folder = Path(tiny_models) / MODELS.spec(name).weights_dir
    pipe = getattr(diffusers, FAMILIES.spec(base.spec.family).pipeline_class).from_pretrained(str(folder))
    pipe.load_lora_weights(str(out.parent))
    pipe.fuse_lora()
    pipe.unload_lora_weights()
    ours, theirs = _weights(merged), _weights(pipe.transformer)
    assert ours.keys() == theirs.keys()
    diff = max((ours[k] - theirs[k]).abs().max().item() for k in ours)
    changed = sum(not torch.equal(ours[k], _weights(base.transformer)[k]) for k in ours)
    assert diff <= 1e-6 and changed >= 4, (diff, changed)

    prompts, seeds = ["a red cube", "two cats"], [3, 4]
    assert torch.equal(_generate_with(base, merged, prompts, seeds),
                       _generate_with(base, pipe.transformer.eval(), prompts, seeds))

    # the harness reads its own export back to the same weights, with the training record copied beside it
    from rtdmd_bench.models.lora import training_reward_names

    records: list = []
    again = _weights(_merged(base, [out], records))
    assert max((again[k] - ours[k]).abs().max().item() for k in ours) <= 1e-6
    assert training_reward_names(records) == ["pickscore"]


def test_merged_transformer_folder_loads_with_from_pretrained(tiny_models, generators, tmp_path):
    from diffusers import SD3Transformer2DModel

    base = generators["tiny-sd35"]
    pt = trained_lora(base, "sd35", tmp_path / "lora")
    folder = export_merged("tiny-sd35", [str(pt)], tmp_path / "merged", weights=tiny_models)
    loaded = SD3Transformer2DModel.from_pretrained(str(folder.parent), subfolder="transformer")
    ours = build("tiny-sd35", tiny_models, lora=[str(pt)]).transformer.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in loaded.state_dict().items())


def test_scale_and_family_mismatch(tiny_models, generators, tmp_path, monkeypatch):
    base = generators["tiny-sd35"]
    pt = trained_lora(base, "sd35", tmp_path / "lora")
    full = build("tiny-sd35", tiny_models, lora=[str(pt)])
    monkeypatch.chdir(tmp_path)  # a relative --lora path is relative to the current directory
    half = build("tiny-sd35", tiny_models, lora=["lora/generator_ema.pt:0.5"])
    k = "transformer_blocks.0.attn.to_q.weight"
    w0, w1, wh = (dict(g.transformer.named_parameters())[k] for g in (base, full, half))
    torch.testing.assert_close(wh - w0, 0.5 * (w1 - w0), atol=1e-6, rtol=0)
    assert half.describe()["lora"][0]["path"] == "lora/generator_ema.pt"
    assert half.describe()["lora"][0]["scale"] == 0.5
    out = export_diffusers(pt, tmp_path / "d", family="sd35")
    with pytest.raises(LoraError, match="is for the sd35 family .*but the model is flux1"):
        build("tiny-flux1", tiny_models, lora=[str(out)])
    with pytest.raises(LoraError, match="is for the sd35 family .*training.json base_model 'tiny-sd35'"):
        build("tiny-sd3", tiny_models, lora=[str(pt)])  # same shapes: only the declared family can tell


def test_hub_lora_reference_from_the_weights_root_and_offline_error(tiny_models, generators, tmp_path):
    import shutil

    from rtdmd_bench.models.lora_refs import hub_destination

    root = tmp_path / "root"
    shutil.copytree(Path(tiny_models) / "models", root / "models")
    pt = trained_lora(generators["tiny-flux2"], "flux2_klein", tmp_path / "src")
    dest = hub_destination(root, "Acme/FLUX2-RTDMD", "rtdmd/generator_ema.pt", None)
    dest.parent.mkdir(parents=True)
    shutil.copyfile(pt, dest)
    shutil.copyfile(pt.parent / "adapter_config.json", dest.parent / "adapter_config.json")
    gen = build("tiny-flux2", root, lora=["Acme/FLUX2-RTDMD:rtdmd/generator_ema.pt"])
    (rec,) = gen.describe()["lora"]
    assert rec["path"] == "Acme/FLUX2-RTDMD:rtdmd/generator_ema.pt" and str(root) not in str(rec)
    assert rec["hub"] == {"repo": "Acme/FLUX2-RTDMD", "file": "rtdmd/generator_ema.pt", "revision": None}
    with pytest.raises(LoraError, match=r"offline \(HF_HUB_OFFLINE=1\).*loras/FLUX2-RTDMD@v2/rtdmd/generator_ema.pt"):
        build("tiny-flux2", root, lora=["Acme/FLUX2-RTDMD:rtdmd/generator_ema.pt@v2"])


def test_lora_export_cli(tiny_models, generators, tmp_path):
    from typer.testing import CliRunner

    from rtdmd_bench.cli import app

    pt = trained_lora(generators["tiny-sd3"], "sd3", tmp_path / "lora")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["lora", "export", str(pt), "--format", "diffusers", "--out", str(out),
                                   "--merged-with", "tiny-sd3", "--weights", tiny_models])
    assert res.exit_code == 0, res.output
    assert (out / WEIGHT_NAME).is_file() and (out / "transformer" / "config.json").is_file()
    res = CliRunner().invoke(app, ["lora", "export", str(pt), "--format", "kohya", "--out", str(out)])
    assert res.exit_code == 2 and "--format 'kohya' is not supported" in res.output


@pytest.mark.parametrize("with_metadata", [True, False])
def test_a_lora_saved_by_diffusers_merges_like_diffusers_fuses_it(tiny_models, tmp_path, with_metadata):
    """What diffusers' training scripts write (``save_lora_weights`` of a peft adapter; newer versions add the
    ``lora_adapter_metadata`` header, older ones do not and mean alpha = r) merges as ``fuse_lora`` does."""
    import diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = Path(tiny_models) / MODELS.spec("tiny-flux2").weights_dir
    pipe = diffusers.Flux2KleinPipeline.from_pretrained(str(folder))
    config = LoraConfig(r=4, lora_alpha=4 if not with_metadata else 12, init_lora_weights="gaussian",
                        target_modules=["to_q", "to_k", "to_qkv_mlp_proj"])
    pipe.transformer.add_adapter(config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in pipe.transformer.named_parameters():
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    diffusers.Flux2KleinPipeline.save_lora_weights(
        tmp_path / "lora", transformer_lora_layers=get_peft_model_state_dict(pipe.transformer),
        transformer_lora_adapter_metadata=config.to_dict() if with_metadata else None)
    ref = diffusers.Flux2KleinPipeline.from_pretrained(str(folder))
    ref.load_lora_weights(str(tmp_path / "lora"))
    ref.fuse_lora()
    ref.unload_lora_weights()
    ours = _weights(build("tiny-flux2", tiny_models, lora=[str(tmp_path / "lora" / WEIGHT_NAME)]).transformer)
    theirs = _weights(ref.transformer)
    assert max((ours[k] - theirs[k]).abs().max().item() for k in ours) <= 1e-6
    base = _weights(pipe.transformer)  # the adapter is not merged there: the base weights
    assert sum(not torch.equal(ours[k], base[k]) for k in ours) >= 3
