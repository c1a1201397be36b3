"""Typer root app. One module per command; every heavy import happens inside a command body, so
``rtdmd-bench --help`` and ``rtdmd-bench list ...`` stay well under 0.5 s."""

from __future__ import annotations

import importlib.util

import typer

from rtdmd_bench.cli import lora, prompts, report, weights
from rtdmd_bench.cli.eval import eval_command
from rtdmd_bench.cli.listing import list_command
from rtdmd_bench.cli.score import score_command
from rtdmd_bench.cli.train import train
from rtdmd_bench.cli.validate import validate_command

app = typer.Typer(name="rtdmd-bench", no_args_is_help=True, add_completion=False,
                  help="Evaluation-first benchmark harness for few-step text-to-image generators, with RTDMD trainers.")
app.command("eval")(eval_command)
app.command("score")(score_command)
app.command("list")(list_command)
app.command("validate")(validate_command)
app.command("train")(train)
app.add_typer(prompts.app, name="prompts")
app.add_typer(weights.app, name="weights")
app.add_typer(lora.app, name="lora")
app.command("leaderboard")(report.leaderboard)
app.command("compare")(report.compare)
app.command("check")(report.check)
app.command("report")(report.report)
app.command("export")(report.export)
if importlib.util.find_spec("rtdmd_bench.cli.toy") is not None:
    from rtdmd_bench.cli.toy import toy

    app.command("toy")(toy)


def main() -> None:
    app()
