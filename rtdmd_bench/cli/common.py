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
    """Turn the project's expected errors into a one-paragraph message and exit code 2 (no traceback)."""
    from rtdmd_bench.config import ConfigError
    from rtdmd_bench.registry import RegistryError

    expected = (ConfigError, RegistryError, FileNotFoundError, ValueError, PermissionError, ConnectionError)
    extra = []
    try:
        from rtdmd_bench.eval.rundir import RunDirError

        extra.append(RunDirError)
    except ImportError:  # pragma: no cover
        pass
    try:
        yield
    except tuple(expected) + tuple(extra) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(2) from None


def is_tty() -> bool:
    return sys.stderr.isatty()
