"""One loader for every entry point group the package reads (backends, companions of the local
service, metric providers): another package plugs in by declaring an entry point in its own
metadata; this package's own are also passed in code (`own`) so they are found when it runs
from a source tree whose installed metadata predates them. Nothing is imported until loaded,
so listing is cheap and the IBM SDKs cost nothing to users who never choose them."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from mlops_widgets.errors import MlopsError


@dataclass(frozen=True)
class Plugin:
    """One declared plug-in: its name in `group` and its `module:attribute` target."""

    group: str
    name: str
    target: str

    def load(self) -> Any:
        """The target object; a plug-in that fails to import (any way a third party's may) is one
        error naming the group, the target and the cause."""
        module, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module.strip())
            for part in (attr or "").strip().split(".") if attr else ():
                obj = getattr(obj, part)
        except Exception as exc:
            raise MlopsError(
                f"{self.group} plug-in {self.name!r} ({self.target}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        return obj


def declared(group: str, own: Mapping[str, str] | None = None) -> dict[str, Plugin]:
    """Name -> plug-in of `group`, sorted by name: `own` first, then installed entry points (an
    installed one of the same name takes its place)."""
    found = {name: Plugin(group, name, target) for name, target in (own or {}).items()}
    found.update({ep.name: Plugin(group, ep.name, ep.value) for ep in entry_points(group=group)})
    return dict(sorted(found.items()))


def load_all(group: str, own: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Every plug-in of `group` that loads (name -> object), and the errors of those that do not
    (name -> message): one broken plug-in never hides the others."""
    loaded: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, plugin in declared(group, own).items():
        try:
            loaded[name] = plugin.load()
        except MlopsError as exc:
            errors[name] = exc.message
    return loaded, errors
