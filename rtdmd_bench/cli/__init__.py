"""Typer root app. One module per command; every heavy import happens inside a command body, so
``rtdmd-bench --help`` and ``rtdmd-bench list ...`` stay well under 0.5 s."""

from __future__ import annotations

import typer

from rtdmd_bench.cli import prompts, weights
from rtdmd_bench.cli.eval import eval_command
from rtdmd_bench.cli.listing import list_command
from rtdmd_bench.cli.validate import validate_command

app = typer.Typer(name="rtdmd-bench", no_args_is_help=True, add_completion=False,
                  help="Evaluation-first benchmark harness for few-step text-to-image generators, with RTDMD trainers.")
app.command("eval")(eval_command)
app.command("list")(list_command)
app.command("validate")(validate_command)
app.add_typer(prompts.app, name="prompts")
app.add_typer(weights.app, name="weights")


def main() -> None:
    app()
