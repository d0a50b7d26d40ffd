"""Monitor schedules as OpenScale keeps them on a monitor instance, and the slot arithmetic the
local scheduler and the listings share.

OpenScale's shape (`MonitorInstanceSchedule`): `{"repeat_interval": 30, "repeat_unit": "minute",
"repeat_type": "minute", "status": "enabled" | "disabled", "start_time": {"type": "absolute",
"timestamp": ISO time}}`. OpenScale's smallest unit is the minute; the embedded backend also
keeps "second" (tests, demos). An
evaluation is due at each slot `start + k * interval` (k >= 1); a scheduler that was down runs
only the latest missed slot.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_widgets.config.fields import EVERY_UNITS, every_seconds
from mlops_widgets.errors import Hint, MlopsError
from mlops_widgets.settings import MIN_SCHEDULE_S, of_workspace
from mlops_widgets.workspace import Workspace

MIN_ENV = MIN_SCHEDULE_S.env
ENABLED, DISABLED = "enabled", "disabled"
_TYPES = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
    "month": 2592000,
    "year": 31536000,
}


def min_interval_s(ws: Workspace) -> int:
    """The smallest repeat the workspace accepts (its setting min_schedule_s, the same in every
    process acting on it: settings.py)."""
    return int(of_workspace(ws, MIN_SCHEDULE_S))


def parse_time(value: str) -> datetime:
    """An ISO time (a time without zone is UTC)."""
    try:
        t = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise MlopsError(f"not an ISO date and time: {value!r} (e.g. 2026-01-31T08:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def make_schedule(
    every: str, *, min_s: int, paused: bool = False, start: datetime | None = None
) -> dict[str, Any]:
    """OpenScale's schedule for `every` ("30m"); a repeat below `min_s` (the workspace's
    minimum) is refused."""
    try:
        seconds = every_seconds(every)
    except ValueError as exc:
        raise MlopsError(str(exc)) from None
    if seconds < min_s:
        raise MlopsError(
            f"a schedule's evaluations must be at least {min_s} s apart, got {every!r}",
            hint=Hint("monitor.schedule.longer", "choose a longer repeat", {"every": f"{min_s}s"}),
        )
    unit = _TYPES[every[-1]]
    return {
        "repeat_interval": int(every[:-1]),
        "repeat_unit": unit,
        "repeat_type": unit,
        "status": DISABLED if paused else ENABLED,
        "start_time": start_time(start),
    }


def start_time(start: datetime | None = None) -> dict[str, str]:
    """OpenScale's absolute start time: `start`, else now (to the second)."""
    return {"type": "absolute", "timestamp": (start or datetime.now(UTC).replace(microsecond=0)).isoformat()}


def unit_of(schedule: dict[str, Any]) -> str:
    """The repeat unit (OpenScale's `repeat_unit`, older ones only have `repeat_type`)."""
    return str(schedule.get("repeat_unit") or schedule["repeat_type"])


def interval_s(schedule: dict[str, Any], min_s: int = 1) -> int:
    """Seconds between slots, never below `min_s` (the scheduler passes the workspace's minimum:
    a schedule written by hand or under a lower minimum cannot run more often)."""
    seconds = int(schedule["repeat_interval"]) * _SECONDS[unit_of(schedule)]
    return max(seconds, min_s)


def every_text(schedule: dict[str, Any]) -> str:
    """`30m` for a 30-minute schedule: the entry's and the CLI's way of writing it."""
    unit = next((u for u, t in _TYPES.items() if t == unit_of(schedule)), None)
    if unit is None:  # week, month (30 d), year (365 d): written as days
        days = int(schedule["repeat_interval"]) * _SECONDS[unit_of(schedule)] // EVERY_UNITS["d"]
        return f"{days}d"
    return f"{schedule['repeat_interval']}{unit}"


def start_of(schedule: dict[str, Any]) -> datetime:
    start = (schedule.get("start_time") or {}).get("timestamp")
    return parse_time(start) if start else datetime(1970, 1, 1, tzinfo=UTC)


def latest_slot(schedule: dict[str, Any], now: datetime, min_s: int = 1) -> datetime | None:
    """The latest slot at or before `now`; None before the first one."""
    start, step = start_of(schedule), interval_s(schedule, min_s)
    k = math.floor((now - start).total_seconds() / step)
    return start + timedelta(seconds=k * step) if k >= 1 else None


def next_slot(schedule: dict[str, Any], now: datetime) -> datetime:
    """The first slot after `now`."""
    start, step = start_of(schedule), interval_s(schedule)
    k = max(1, math.floor((now - start).total_seconds() / step) + 1)
    return start + timedelta(seconds=k * step)


def is_enabled(schedule: dict[str, Any] | None) -> bool:
    return bool(schedule) and schedule.get("status", ENABLED) == ENABLED  # type: ignore[union-attr]
