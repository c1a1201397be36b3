"""Typer root app. One module per command; every heavy import happens inside a command body, so
``rtdmd-bench --help`` and ``rtdmd-bench list ...`` stay well under 0.5 s."""

from __future__ import annotations

import importlib.util

import typer

from rtdmd_bench.cli import prompts, report, weights
from rtdmd_bench.cli.eval import eval_command
from rtdmd_bench.cli.listing import list_command, print_registry
from rtdmd_bench.cli.train import train
from rtdmd_bench.cli.validate import validate_command

app = typer.Typer(name="rtdmd-bench", no_args_is_help=True, add_completion=False,
                  help="Evaluation-first benchmark harness for few-step text-to-image generators, with RTDMD trainers.")
app.command("eval")(eval_command)
app.command("list")(list_command)
app.command("validate")(validate_command)
app.command("train")(train)
app.add_typer(prompts.app, name="prompts")
app.add_typer(weights.app, name="weights")
app.command("leaderboard")(report.leaderboard)
app.command("compare")(report.compare)
app.command("check")(report.check)
app.command("report")(report.report)
if importlib.util.find_spec("rtdmd_bench.cli.toy") is not None:
    from rtdmd_bench.cli.toy import toy

    app.command("toy")(toy)


def main() -> None:
    """Console entry point. ``rtdmd-bench list KIND`` skips Typer's parsing: Typer coerces every parameter (even
    the root's --help flag) through pydantic, whose import is ~0.15 s of a command that otherwise starts in
    ~0.25 s (benchmarks/test_eval_bench.py::test_cli_startup). Everything else, ``list --help`` included, goes
    through Typer."""
    import sys

    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "list" and not args[1].startswith("-"):
        try:
            print_registry(args[1])
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        return
    app()
