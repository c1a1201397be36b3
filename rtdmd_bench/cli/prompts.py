"""``rtdmd-bench prompts import|fetch``: install canonical public prompt sets, checksum-verified."""

from __future__ import annotations

from pathlib import Path

import typer

from rtdmd_bench.cli.common import console, user_errors

app = typer.Typer(help="Install canonical prompt sets into the user data dir (sha256 and count verified).",
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
