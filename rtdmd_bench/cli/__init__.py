"""Typer root app. One module per command; every heavy import happens inside a command body, so
``rtdmd-bench --help`` and ``rtdmd-bench list ...`` stay well under 0.5 s. Every command runs inside the one
error boundary (``cli.errors`` via ``cli.common.user_errors``): registered through ``_guarded`` here."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any

import typer

from rtdmd_bench.cli import prompts, report, weights
from rtdmd_bench.cli.eval import eval_command
from rtdmd_bench.cli.listing import list_command
from rtdmd_bench.cli.train import train
from rtdmd_bench.cli.validate import validate_command


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` inside the error boundary (Typer reads the signature and annotations through ``__wrapped__``)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        from rtdmd_bench.cli.common import user_errors

        with user_errors():
            return fn(*args, **kwargs)

    return run


def _version(value: bool) -> None:
    if value:
        from rtdmd_bench import __version__

        typer.echo(f"rtdmd-bench {__version__}")
        raise typer.Exit()


app = typer.Typer(name="rtdmd-bench", no_args_is_help=True, add_completion=False,
                  help="Evaluation-first benchmark harness for few-step text-to-image generators, with RTDMD trainers.")


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Evaluation-first benchmark harness for few-step text-to-image generators, with RTDMD trainers."""


for _name, _fn in (("eval", eval_command), ("list", list_command), ("validate", validate_command), ("train", train),
                   ("leaderboard", report.leaderboard), ("compare", report.compare), ("check", report.check),
                   ("report", report.report)):
    app.command(_name)(_guarded(_fn))
for _sub in (prompts.app, weights.app):
    for _cmd in _sub.registered_commands:
        _cmd.callback = _guarded(_cmd.callback)
app.add_typer(prompts.app, name="prompts")
app.add_typer(weights.app, name="weights")
if importlib.util.find_spec("rtdmd_bench.cli.toy") is not None:
    from rtdmd_bench.cli.toy import toy

    app.command("toy")(_guarded(toy))


def main() -> None:
    app()
