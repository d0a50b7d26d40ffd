"""Where monitor definitions and their providers plug in.

Three sources, in precedence order:
1. built-ins: segmentation_metrics and generic_metrics (`BUILTIN_PROVIDERS`);
2. providers from other packages, entry point group `mlops_widgets.monitors`: the entry point's
   name is the provider's (and its definition's) id, its object a `MetricProvider`;
3. registrations stored in the workspace database (table `mon_registered_definitions`): a new
   definition id (e.g. `segmentation_metrics_v22`, as the original versioned its monitors)
   computed by an existing provider, optionally with its own default thresholds.

Registrations belong to a workspace, so every lookup names the one it reads (callers pass it;
nothing falls back to the environment's). A broken third-party entry point never hides the others: it is skipped when listing, and asking
for it by name raises an error that says why it failed to load.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.monitors.base import MetricProvider, ProviderInput
from mlops_widgets.monitors.definitions import GENERIC, SEGMENTATION, MonitorDefinition
from mlops_widgets.monitors.thresholds import effective_thresholds, parse_thresholds
from mlops_widgets.plugins import load_all
from mlops_widgets.workspace import Workspace, transaction

ENTRY_POINT_GROUP = "mlops_widgets.monitors"


def _segmentation(inputs: ProviderInput) -> dict[str, float]:
    # numpy and Pillow load only when images are evaluated, not when definitions are listed.
    from mlops_widgets.monitors.segmentation import compute

    return compute(inputs)


def _generic(inputs: ProviderInput) -> dict[str, float]:
    from mlops_widgets.monitors.generic import compute

    return compute(inputs)


BUILTIN_PROVIDERS: dict[str, MetricProvider] = {
    SEGMENTATION.provider: MetricProvider(SEGMENTATION, _segmentation),
    GENERIC.provider: MetricProvider(GENERIC, _generic),
}
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
VERSIONED = re.compile(r"(?P<base>.+)_v[0-9]+")  # segmentation_metrics_v22 -> segmentation_metrics
TABLE = "mon_registered_definitions"


def _load_entry_points() -> tuple[dict[str, MetricProvider], dict[str, str]]:
    """Third-party providers by name, and load errors by name."""
    objects, errors = load_all(ENTRY_POINT_GROUP)
    loaded: dict[str, MetricProvider] = {}
    for name, obj in objects.items():
        if name in BUILTIN_PROVIDERS:
            continue
        if not isinstance(obj, MetricProvider):
            errors[name] = (
                f"{ENTRY_POINT_GROUP} plug-in {name!r} is a {type(obj).__name__}, not a MetricProvider"
            )
            continue
        # The entry point's name is the provider's key, whatever the object calls itself.
        loaded[name] = MetricProvider(replace(obj.definition, provider=name), obj.compute)
    return loaded, errors


def providers() -> dict[str, MetricProvider]:
    """Every provider that loads: built-ins first, then entry points."""
    return {**BUILTIN_PROVIDERS, **_load_entry_points()[0]}


def provider(name: str) -> MetricProvider:
    """One provider by name; NotFoundError lists the available ones."""
    if name in BUILTIN_PROVIDERS:
        return BUILTIN_PROVIDERS[name]
    loaded, errors = _load_entry_points()
    if name in loaded:
        return loaded[name]
    if name in errors:
        raise MlopsError(f"metric provider {name!r}: {errors[name]}")
    raise NotFoundError(
        f"no metric provider {name!r}; available: {', '.join([*BUILTIN_PROVIDERS, *loaded])} "
        f"(add more through the {ENTRY_POINT_GROUP!r} entry point group)"
    )


# --- stored registrations ------------------------------------------------------------------------


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        " id TEXT PRIMARY KEY, provider TEXT NOT NULL, name TEXT NOT NULL,"
        " description TEXT NOT NULL, thresholds TEXT NOT NULL, created_at TEXT NOT NULL)"
    )


def _registered(ws: Workspace) -> list[sqlite3.Row]:
    # Reading must not create a workspace: `mlops config ...` in a fresh folder stays side-effect free.
    if not ws.db_path.exists():
        return []
    conn = ws.connect()
    try:
        _ensure_table(conn)
        return conn.execute(f"SELECT * FROM {TABLE} ORDER BY id").fetchall()
    finally:
        conn.close()


def _from_row(row: sqlite3.Row, base: MonitorDefinition) -> MonitorDefinition:
    thresholds = parse_thresholds(base, json.loads(row["thresholds"]))
    return MonitorDefinition(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        provider=row["provider"],
        thresholds=effective_thresholds(base, thresholds),
        ranges=base.ranges,
    )


def definitions(workspace: Workspace) -> dict[str, MonitorDefinition]:
    """All monitor definitions known in `workspace`, by id: built-ins, entry points, its
    registrations (those whose provider is currently unavailable are left out)."""
    available = providers()
    out = {p.definition.id: p.definition for p in available.values()}
    for row in _registered(workspace):
        if row["id"] not in out and row["provider"] in available:
            out[row["id"]] = _from_row(row, available[row["provider"]].definition)
    return out


def definition(definition_id: str, workspace: Workspace) -> MonitorDefinition:
    """One definition; NotFoundError lists the known ones and says how to register more."""
    known = definitions(workspace)
    if definition_id in known:
        return known[definition_id]
    base = VERSIONED.fullmatch(definition_id)
    hint = base["base"] if base and base["base"] in known else "<provider>"
    raise NotFoundError(
        f"unknown monitor {definition_id!r}; known monitors: {', '.join(known)} "
        f"(providers: {', '.join(providers())})",
        hint=Hint(
            "monitor.register",
            f"register it as a monitor computed by one of the providers, e.g. {hint}",
            {"monitor": definition_id, "provider": hint},
        ),
    )


def provider_for(definition_id: str, workspace: Workspace) -> MetricProvider:
    """The provider that computes a definition's metrics."""
    return provider(definition(definition_id, workspace).provider)


def register_definition(
    definition_id: str,
    provider_name: str,
    *,
    name: str | None = None,
    description: str | None = None,
    thresholds: Mapping[str, Any] | None = None,
    workspace: Workspace,
) -> MonitorDefinition:
    """Register (or re-register) `definition_id` as computed by `provider_name`, with default
    thresholds overridden by `thresholds` (entry shape). Built-in and entry-point ids are taken."""
    if not ID_PATTERN.match(definition_id):
        raise MlopsError(
            f"invalid monitor id {definition_id!r}: use lower-case letters, digits and '_', "
            "starting with a letter (e.g. segmentation_metrics_v22)"
        )
    if definition_id in providers():
        raise MlopsError(f"monitor {definition_id!r} is built in or provided by a package; pick another id")
    base = provider(provider_name).definition
    parse_thresholds(base, thresholds)  # unknown metric / bad value -> error before storing
    ws = workspace
    conn = ws.connect()
    try:
        _ensure_table(conn)
        with transaction(conn):
            conn.execute(
                f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                (
                    definition_id,
                    provider_name,
                    name or f"{base.name} ({definition_id})",
                    description or base.description,
                    json.dumps(dict(thresholds or {})),
                    datetime.now(UTC).isoformat(),
                ),
            )
    finally:
        conn.close()
    return definition(definition_id, ws)


def unregister_definition(definition_id: str, workspace: Workspace) -> None:
    """Forget a registration; NotFoundError when `definition_id` was never registered."""
    ws = workspace
    if not any(row["id"] == definition_id for row in _registered(ws)):
        raise NotFoundError(f"monitor {definition_id!r} is not a registered monitor")
    conn = ws.connect()
    try:
        with transaction(conn):
            conn.execute(f"DELETE FROM {TABLE} WHERE id = ?", (definition_id,))
    finally:
        conn.close()
