"""The CLI's one error boundary: known exception classes become one clear line and exit code 2.

Every command body runs inside ``user_errors()`` (``rtdmd_bench.cli.common``). What the user can fix (a name, a
flag value, a file, the disk, the network) is reported as ``error: <message>`` naming the file or flag and the
fix; anything else is a bug and keeps its traceback. Under torchrun only rank 0 prints, and every rank exits with
the same code. Messages are printed literally (rich markup in a model name such as ``[/x]`` is escaped).
"""

from __future__ import annotations

import errno
import os

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _user_error_classes() -> tuple[type[BaseException], ...]:
    """Exception classes that mean "the input is wrong" (imported lazily: the boundary must stay cheap)."""
    from rtdmd_bench.config import ConfigError
    from rtdmd_bench.registry import RegistryError

    classes: list[type[BaseException]] = [ConfigError, RegistryError, ValueError, OSError, ConnectionError]
    for module, names in (("rtdmd_bench.eval.rundir", ("RunDirError",)),
                          ("rtdmd_bench.training.checkpoint", ("CheckpointError",)),
                          ("rtdmd_bench.rewards.checkpoint", ("CheckpointMismatchError", "TokenizerVocabError")),
                          ("rtdmd_bench.rewards.fetch", ("WeightsFetchError",))):
        try:
            mod = __import__(module, fromlist=list(names))
        except ImportError:  # a lighter install without that part
            continue
        classes += [getattr(mod, n) for n in names if hasattr(mod, n)]
    return tuple(classes)


def describe(exc: BaseException) -> tuple[str, int] | None:
    """``(message, exit code)`` for a user error, None for a bug (the caller re-raises it)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; run the same command again to resume", EXIT_INTERRUPTED
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" while writing {exc.filename}" if exc.filename else ""
        return (f"the disk is full{where}. Free some space and run the same command again: finished work is kept "
                f"and the run resumes where it stopped.", EXIT_USER_ERROR)
    if not isinstance(exc, _user_error_classes()):
        return None
    if isinstance(exc, OSError) and type(exc) is not ConnectionError and exc.strerror and exc.filename \
            and str(exc).startswith("["):  # a bare errno message: "[Errno 21] Is a directory: 'x'"
        return f"{exc.filename}: {exc.strerror.lower()}", EXIT_USER_ERROR
    return str(exc) or type(exc).__name__, EXIT_USER_ERROR


def is_main_rank() -> bool:
    """True outside torchrun and on its rank 0 (the one that prints errors)."""
    return os.environ.get("RANK", "0") == "0"
