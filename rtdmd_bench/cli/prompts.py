"""``rtdmd-bench prompts import|fetch|add``: install canonical public prompt sets (checksum-verified) or create a
user suite from any prompt file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rtdmd_bench.cli.common import console, user_errors

app = typer.Typer(help="Install canonical prompt sets (sha256 and count verified) or add your own (prompts add).",
                  no_args_is_help=True)


@app.command("import")
def import_command(name: str = typer.Argument(..., help="Suite name, e.g. geneval, drawbench."),
                   file: Path = typer.Argument(..., help="Local copy of the canonical prompt file.")) -> None:
    """Verify FILE against suite NAME's manifest and install it."""
    from rtdmd_bench.suites import import_suite

    with user_errors():
        dest = import_suite(name, file)
    console.print(f"installed {name} -> {dest}")


@app.command("fetch")
def fetch_command(name: str = typer.Argument(..., help="Suite name.")) -> None:
    """Download suite NAME from its public source (needs network), verify and install it."""
    from rtdmd_bench.suites import fetch_suite

    with user_errors():
        dest = fetch_suite(name)
    console.print(f"fetched {name} -> {dest}")


@app.command("add")
def add_command(name: str = typer.Argument(..., help="New suite name."),
                file: Path = typer.Argument(..., help="Prompt file: .txt (one per line), .jsonl (prompt + metadata), "
                                            ".csv/.tsv (a prompt column)."),
                rewards: Optional[list[str]] = typer.Option(None, "--rewards", "-r",
                                                            help="Default rewards of the suite (comma-separated)."),
                images_per_prompt: int = typer.Option(1, "--images-per-prompt", min=1, help="Images per prompt."),
                tag_field: Optional[str] = typer.Option(None, help="Metadata field whose value tags each prompt "
                                                        "(default: 'tag' when every prompt has one)."),
                suites_dir: Optional[Path] = typer.Option(None, "--suites-dir", help=(
                    "Create it here instead of the user suites dir ($RTDMD_BENCH_DATA/suites); use the same "
                    "--suites-dir (or $RTDMD_BENCH_PROMPTS) when evaluating."))) -> None:
    """Create a user suite from FILE: a copy of the file and a suite.yaml without a pinned checksum (results record
    it as a "user suite" with the file's actual sha256)."""
    from rtdmd_bench.cli.common import split_list
    from rtdmd_bench.suites import add_user_suite

    with user_errors():
        names = split_list(rewards)
        if names:
            from rtdmd_bench.rewards import reward_spec

            for r in names:
                reward_spec(r)
        manifest = add_user_suite(name, file, rewards=names, images_per_prompt=images_per_prompt,
                                  tag_field=tag_field, base=suites_dir)
    console.print(f"created user suite {name} -> {manifest.parent} (evaluate with --suite {name}"
                  + (f" --suites-dir {manifest.parent.parent}" if suites_dir else "") + ")", highlight=False)
