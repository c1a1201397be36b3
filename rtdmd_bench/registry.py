"""One registry shape for models, rewards, suites and trainers.

Each entry is a cheap, frozen *spec* (readable without importing any backend) whose ``target`` is a lazy
``"module:Attr"`` string. ``get()`` imports the target on first use. Wherever a registry name is accepted,
a ``"module:Attr"`` plugin path is accepted as well (``resolve()``).

Example:
    >>> reg = Registry("widget")
    >>> reg.add(Spec(name="json", target="json:dumps", description="JSON encoder"))
    >>> reg.get("json")({"a": 1})
    '{"a": 1}'
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


class RegistryError(KeyError):
    """Unknown name, duplicate name or unloadable target. ``str()`` is the full helpful message."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Spec:
    """Minimal spec: every kind-specific spec subclasses this frozen dataclass.

    Attributes:
        name: registry key.
        target: lazy ``"module:Attr"`` path of the implementation.
        description: one line for ``rtdmd-bench list``.
    """

    name: str
    target: str
    description: str = ""

    def summary(self) -> dict[str, str]:
        """Key metadata shown by ``rtdmd-bench list`` (kind-specific specs add columns)."""
        return {}


S = TypeVar("S", bound=Spec)


def import_target(target: str) -> Any:
    """Import ``"package.module:Attr.sub"`` and return the attribute.

    Raises:
        RegistryError: malformed path, missing module or missing attribute, with the path in the message.
    """
    if ":" not in target:
        raise RegistryError(f"plugin path {target!r} must look like 'package.module:Attr'")
    module_name, attr_path = target.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"cannot import module {module_name!r} for {target!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise RegistryError(f"module {module_name!r} has no attribute {attr_path!r} ({target!r})") from exc
    return obj


def did_you_mean(name: str, choices: list[str], n: int = 3) -> list[str]:
    """Closest names to ``name`` among ``choices`` (difflib ratio >= 0.5), best first."""
    return difflib.get_close_matches(name, choices, n=n, cutoff=0.5)


@dataclass
class Registry(Generic[S]):
    """Name -> spec map with lazy targets.

    Args:
        kind: what the entries are ("model", "reward", ...); used in error messages.
    """

    kind: str
    _specs: dict[str, S] = field(default_factory=dict)
    _loaded: dict[str, Any] = field(default_factory=dict)

    def add(self, spec: S) -> S:
        """Register ``spec``. Raises RegistryError on a duplicate name."""
        if spec.name in self._specs:
            raise RegistryError(f"duplicate {self.kind} name {spec.name!r} (already -> {self._specs[spec.name].target})")
        self._specs[spec.name] = spec
        return spec

    def register(self, spec: S):
        """Decorator form of ``add`` for tests and plugins: ``@REG.register(Spec(...))``."""

        def deco(obj):
            self.add(spec)
            self._loaded[spec.name] = obj
            return obj

        return deco

    def remove(self, name: str) -> None:
        """Drop an entry (tests and plugin reloads)."""
        self._specs.pop(name, None)
        self._loaded.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def in_registration_order(self) -> list[S]:
        """Specs in the order they were added (``__iter__`` is alphabetical)."""
        return list(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[S]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def unknown(self, name: str) -> RegistryError:
        """The error for an unknown ``name``: did-you-mean plus every available name."""
        hints = did_you_mean(name, self.names())
        hint = f" Did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        return RegistryError(
            f"unknown {self.kind} {name!r}.{hint} Available {self.kind}s: {', '.join(self.names()) or '(none)'}. "
            f"A plugin can be given as 'package.module:Attr'."
        )

    def spec(self, name: str) -> S:
        """The spec of ``name``; never imports the backend."""
        try:
            return self._specs[name]
        except KeyError:
            raise self.unknown(name) from None

    def get(self, name: str) -> Any:
        """The implementation of ``name`` (imported once and cached) or of a ``"module:Attr"`` plugin."""
        if name not in self._specs and ":" in name:
            return import_target(name)
        spec = self.spec(name)
        if name not in self._loaded:
            self._loaded[name] = import_target(spec.target)
        return self._loaded[name]

    def resolve(self, name: str) -> str:
        """Validate a name or plugin path without importing registered backends; returns it unchanged.

        Plugin paths are imported (that is the only way to validate them).
        """
        if name in self._specs:
            return name
        if ":" in name:
            import_target(name)
            return name
        raise self.unknown(name)
