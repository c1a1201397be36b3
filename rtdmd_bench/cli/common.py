"""Helpers shared by CLI commands: comma lists, error reporting, consoles (no heavy imports)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error messages stay greppable: never hard-wrapped


def split_list(values: list[str] | None) -> tuple[str, ...]:
    """``["a,b", "c"]`` -> ``("a", "b", "c")`` (options may be repeated or comma-separated)."""
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return tuple(out)


@contextmanager
def user_errors():
    """The error boundary of every command (``cli.errors``): a user mistake is one ``error:`` line (rank 0 only
    under torchrun) and exit code 2 on every rank; Ctrl-C is exit 130; anything else keeps its traceback."""
    from rtdmd_bench.cli.errors import describe

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except BaseException as exc:  # KeyboardInterrupt included
        described = describe(exc)
        if described is None:
            raise
        raise fail(*described) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` (literally, rank 0 only) and return the ``typer.Exit`` to raise."""
    from rich.markup import escape

    from rtdmd_bench.cli.errors import is_main_rank

    if is_main_rank():
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def is_tty() -> bool:
    return sys.stderr.isatty()
