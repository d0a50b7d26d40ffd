"""Monitor schedules as OpenScale keeps them on a monitor instance, and the slot arithmetic the
local scheduler and the listings share.

OpenScale's shape (`MonitorInstanceSchedule`): `{"repeat_interval": 30, "repeat_unit": "minute",
"repeat_type": "minute", "status": "enabled" | "disabled", "start_time": {"type": "absolute",
"timestamp": ISO time}}`. OpenScale's smallest unit is the minute; the embedded backend also
keeps "second" (tests, demos). An
evaluation is due at each slot `start + offset + k * interval` (k >= 1; the offset, stable per
monitor instance and at most SPREAD_S, keeps schedules set together from firing together); a
scheduler that was down runs only the latest missed slot. A calendar schedule (local backend)
keeps OpenScale's status and start time and adds `cron` (a cron expression) and `timezone` (an
IANA zone); its slots are the expression's times in that zone from the start time on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mlops_widgets.config.fields import EVERY_UNITS, every_seconds
from mlops_widgets.errors import Hint, MlopsError
from mlops_widgets.settings import MIN_SCHEDULE_S, of_workspace
from mlops_widgets.workspace import Workspace, atomic_write

MIN_ENV = MIN_SCHEDULE_S.env
ENABLED, DISABLED = "enabled", "disabled"
SPREAD_S = 300  # the most an interval schedule's offset moves its slots
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


def entry_settings(schedule: dict[str, Any]) -> dict[str, Any]:
    """What the entry keeps of a schedule (without `paused`): `{every}` or `{cron, tz}`."""
    if is_cron(schedule):
        return {"cron": schedule["cron"], "tz": schedule.get("timezone")}
    return {"every": every_text(schedule)}


def from_entry(settings: dict[str, Any], min_s: int) -> dict[str, Any]:
    """The entry's `schedule` settings as the monitor instance's schedule."""
    paused = bool(settings.get("paused"))
    if settings.get("cron"):
        return make_cron_schedule(settings["cron"], tz=settings.get("tz"), min_s=min_s, paused=paused)
    if not settings.get("every"):
        raise MlopsError("a monitor's schedule needs a repeat (every) or a cron expression (cron)")
    return make_schedule(settings["every"], min_s=min_s, paused=paused)


def parse_local_time(value: str, tz: str | None = None) -> datetime:
    """A time a user typed: ISO, with its zone, else in zone `tz` (default: this machine's)."""
    try:
        t = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise MlopsError(f"not an ISO date and time: {value!r} (e.g. 2026-01-31T08:00)") from None
    return t if t.tzinfo else t.replace(tzinfo=zone(tz))


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
    """`30m` for a 30-minute schedule: the entry's and the CLI's way of writing it (a calendar
    schedule: its cron expression)."""
    if is_cron(schedule):
        return str(schedule["cron"])
    unit = next((u for u, t in _TYPES.items() if t == unit_of(schedule)), None)
    if unit is None:  # week, month (30 d), year (365 d): written as days
        days = int(schedule["repeat_interval"]) * _SECONDS[unit_of(schedule)] // EVERY_UNITS["d"]
        return f"{days}d"
    return f"{schedule['repeat_interval']}{unit}"


def start_of(schedule: dict[str, Any]) -> datetime:
    start = (schedule.get("start_time") or {}).get("timestamp")
    return parse_time(start) if start else datetime(1970, 1, 1, tzinfo=UTC)


def offset_s(key: str, step: int) -> int:
    """A schedule's own stable offset within its interval (at most SPREAD_S): schedules set in
    the same second (a demo's monitors, a script's deployments) then fire at different times,
    each at the same place in every interval."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % min(step, SPREAD_S)


def _grid(schedule: dict[str, Any], min_s: int, key: str | None) -> tuple[datetime, int]:
    step = interval_s(schedule, min_s)
    return start_of(schedule) + timedelta(seconds=offset_s(key, step) if key else 0), step


def latest_slot(
    schedule: dict[str, Any], now: datetime, min_s: int = 1, key: str | None = None
) -> datetime | None:
    """The latest slot at or before `now`; None before the first one. `key` (the monitor
    instance's id) shifts an interval schedule by its offset (`offset_s`)."""
    if is_cron(schedule):
        it = _cron_iter(schedule, now + timedelta(seconds=1))  # a slot at `now` itself counts
        prev = it.get_prev(datetime)
        while prev > now:
            prev = it.get_prev(datetime)
        return prev if prev > start_of(schedule) else None
    start, step = _grid(schedule, min_s, key)
    k = math.floor((now - start).total_seconds() / step)
    return start + timedelta(seconds=k * step) if k >= 1 else None


def next_slots(
    schedule: dict[str, Any], now: datetime, count: int = 1, min_s: int = 1, key: str | None = None
) -> list[datetime]:
    """The first `count` slots after `now`."""
    if is_cron(schedule):
        it = _cron_iter(schedule, max(now, start_of(schedule)))
        return [it.get_next(datetime) for _ in range(count)]
    start, step = _grid(schedule, min_s, key)
    k = max(1, math.floor((now - start).total_seconds() / step) + 1)
    return [start + timedelta(seconds=(k + i) * step) for i in range(count)]


def next_slot(schedule: dict[str, Any], now: datetime, key: str | None = None) -> datetime:
    """The first slot after `now`."""
    return next_slots(schedule, now, 1, key=key)[0]


# --- calendar (cron) schedules ---------------------------------------------------------------------


def is_cron(schedule: dict[str, Any]) -> bool:
    return bool(schedule.get("cron"))


def zone(name: str | None) -> tzinfo:
    """An IANA time zone by name (None: this machine's local zone)."""
    if not name:
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MlopsError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris or UTC)") from None


def _cron_iter(schedule: dict[str, Any], at: datetime) -> Any:
    from croniter import croniter

    return croniter(schedule["cron"], at.astimezone(zone(schedule.get("timezone"))))


def make_cron_schedule(
    expr: str,
    *,
    tz: str | None,
    min_s: int,
    paused: bool = False,
    start: datetime | None = None,
) -> dict[str, Any]:
    """A calendar schedule: a cron expression evaluated in time zone `tz` (default: this
    machine's), from `start` on. OpenScale's model has no calendar repeat: its status and start
    time are OpenScale's fields, the expression and zone ours (the local backend runs them)."""
    from croniter import croniter

    expr = " ".join(expr.split())
    if not croniter.is_valid(expr):
        raise MlopsError(
            f"not a cron expression: {expr!r} (five fields: minute hour day-of-month month "
            "day-of-week, e.g. '0 8 * * 1-5'; a sixth, seconds, may follow)"
        )
    timezone = tz or _local_zone_name()
    zone(timezone)  # an unknown zone is refused here, not at the first slot
    schedule = {
        "repeat_type": "cron",
        "cron": expr,
        "timezone": timezone,
        "status": DISABLED if paused else ENABLED,
        "start_time": start_time(start),
    }
    times = next_slots(schedule, datetime.now(UTC), 50)
    gap = min((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
    if gap < min_s:
        raise MlopsError(
            f"a schedule's evaluations must be at least {min_s} s apart, got {expr!r} ({gap:g} s apart)",
            hint=Hint("monitor.schedule.longer", "choose a longer repeat", {"every": f"{min_s}s"}),
        )
    return schedule


def _local_zone_name() -> str:
    """This machine's IANA zone name where it is known (TZ, /etc/localtime), else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        with contextlib.suppress(OSError):
            link = os.readlink("/etc/localtime")
            name = link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def describe(schedule: dict[str, Any]) -> str:
    """The schedule in words: 'every 30 minutes', 'At 08:00 AM, Monday through Friday (Europe/Paris)'."""
    if is_cron(schedule):
        from cron_descriptor import get_description

        fields = schedule["cron"].split()
        if len(fields) == 6:  # croniter's seconds come last, cron-descriptor reads them first
            fields = fields[5:] + fields[:5]
        return f"{get_description(' '.join(fields))} ({schedule.get('timezone') or 'local time'})"
    n, unit = int(schedule["repeat_interval"]), unit_of(schedule)
    return f"every {unit}" if n == 1 else f"every {n} {unit}s"


# --- the evaluation queue the local service publishes -----------------------------------------------


def _queue_path(ws: Workspace) -> Path:
    return ws.root / "inference" / "evaluations.json"


def write_queue(ws: Workspace, state: dict[str, Any] | None) -> None:
    """The scheduler's evaluations now (bound, running, queued); None: no scheduler runs."""
    if state is None:
        _queue_path(ws).unlink(missing_ok=True)
    else:
        atomic_write(_queue_path(ws), json.dumps({**state, "updated_at": datetime.now(UTC).isoformat()}))


def empty_queue() -> dict[str, Any]:
    """The queue of a scheduler that runs and queues nothing (`bound` None: no service)."""
    return {"bound": None, "running": [], "queued": []}


def read_queue(ws: Workspace) -> dict[str, Any]:
    """What the service's scheduler runs and queues (empty when it wrote nothing: callers check
    that the service runs)."""
    try:
        return json.loads(_queue_path(ws).read_text())
    except (OSError, ValueError):
        return empty_queue()


def is_enabled(schedule: dict[str, Any] | None) -> bool:
    return bool(schedule) and schedule.get("status", ENABLED) == ENABLED  # type: ignore[union-attr]
