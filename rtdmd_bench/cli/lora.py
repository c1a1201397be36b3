"""``rtdmd-bench lora export IN --format diffusers --out DIR [--merged-with MODEL]``: a LoRA the harness reads, in
the format diffusers' ``Pipeline.load_lora_weights(DIR)`` + ``fuse_lora()`` turns into the harness's merge."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rtdmd_bench.cli.common import console, user_errors

app = typer.Typer(help="LoRA files: export to the diffusers ecosystem.", no_args_is_help=True)
FORMATS = ("diffusers",)


@app.command("export")
def export_command(
    src: str = typer.Argument(..., help="LoRA: reference .pt (+ adapter_config.json), PEFT folder, diffusers/kohya "
                              ".safetensors, or OWNER/REPO:path[@rev] (see eval --lora)."),
    format: str = typer.Option("diffusers", "--format", help="Output format: diffusers (pytorch_lora_weights"
                               ".safetensors with the transformer. prefix and alpha/r in its header)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    family: Optional[str] = typer.Option(None, help="Generator family to record (default: what the LoRA declares)."),
    merged_with: Optional[str] = typer.Option(None, "--merged-with", help=(
        "Also write OUT/transformer/: MODEL's transformer with the LoRA merged, for from_pretrained.")),
    weights: Optional[str] = typer.Option(None, help="Weights root (for --merged-with and hub LoRAs)."),
) -> None:
    """Write the LoRA for diffusers: `pipe.load_lora_weights(OUT); pipe.fuse_lora()` gives the same transformer
    weights as `rtdmd-bench eval --lora IN` (max |diff| <= 1e-6 on every family's tiny model)."""
    from rtdmd_bench.models.lora_export import export_diffusers, export_merged
    from rtdmd_bench.models.lora_refs import resolve_lora, split_scale
    from rtdmd_bench.weights import resolve_root

    with user_errors():
        if format not in FORMATS:
            raise ValueError(f"--format {format!r} is not supported; choose one of {', '.join(FORMATS)}")
        if family is not None:
            from rtdmd_bench.models.family import FAMILIES

            FAMILIES.spec(family)
        if split_scale(src)[1] != 1.0:
            raise ValueError(f"{src}: a :SCALE is applied when loading (fuse_lora(lora_scale=...)), not exported")
        ref = resolve_lora(src, resolve_root(weights))
        path = export_diffusers(ref.path, out, family=family)
        console.print(f"wrote {path} (diffusers: pipe.load_lora_weights({str(out)!r}); pipe.fuse_lora())",
                      highlight=False)
        if merged_with:
            folder = export_merged(merged_with, [str(ref.path)], out, weights=weights)
            console.print(f"wrote {folder} (merged transformer: from_pretrained({str(out)!r}, "
                          f"subfolder='transformer'))", highlight=False)
