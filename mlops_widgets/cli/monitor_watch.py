"""`mlops monitor schedule | alerts | notify`: monitoring that runs by itself (schedules), what it
found (alerts) and who is told (notification channels). Registered under `mlops monitor`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mlops_widgets.cli._common import CliContext, echo_json, echo_result, echo_table, pass_obj
from mlops_widgets.errors import MlopsError

if TYPE_CHECKING:
    from mlops_widgets.app import RunView, ScheduleRow

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def num(value: Any) -> str:
    """A measured value as listings print it."""
    return "-" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


# --- schedule ------------------------------------------------------------------------------------


@click.command("schedule")
@click.option("--name", help="Deployment name (required unless --list).")
@click.option("--monitor", "monitor_id", help="Only this monitor (default: every monitor of the entry).")
@click.option("--every", help="Repeat: a whole number and a unit s, m, h or d (30m, 1h, 1d).")
@click.option(
    "--cron",
    metavar="EXPR",
    help="Instead of --every (local backend): at the times of this cron expression ('0 8 * * 1-5').",
)
@click.option(
    "--tz", metavar="ZONE", help="Time zone of --cron and of a --start without one (default: local)."
)
@click.option("--start", metavar="TIME", help="First evaluation not before this ISO time (default: now).")
@click.option("--pause", is_flag=True, help="Pause the schedule (kept, evaluates nothing).")
@click.option("--resume", is_flag=True, help="Resume a paused schedule.")
@click.option("--off", "remove", is_flag=True, help="Remove the schedule.")
@click.option("--list", "list_", is_flag=True, help="List the schedules (of --name, else all).")
@_json
@pass_obj
def schedule(
    obj: CliContext,
    name: str | None,
    monitor_id: str | None,
    every: str | None,
    cron: str | None,
    tz: str | None,
    start: str | None,
    pause: bool,
    resume: bool,
    remove: bool,
    list_: bool,
    as_json: bool,
) -> None:
    """Evaluate monitors on a schedule (OpenScale's monitor instance schedule). Locally the
    workspace's service runs it (started when needed), each evaluation a template run; the
    listing shows each schedule in words, its next three times (local time) and the
    evaluations running or queued now."""
    changes = [
        flag
        for flag, on in (
            ("--every", every),
            ("--cron", cron),
            ("--pause", pause),
            ("--resume", resume),
            ("--off", remove),
        )
        if on
    ]
    if list_:
        if changes or start or tz:
            raise MlopsError(f"--list cannot be combined with {', '.join(changes) or '--start or --tz'}")
        rows = obj.app().schedules(name)
    else:
        if not name:
            raise MlopsError("give the deployment with --name (or list the schedules with --list)")
        if not changes:
            raise MlopsError("say what to do: --every REPEAT, --cron EXPR, --pause, --resume or --off")
        if (
            (pause and resume)
            or (remove and len(changes) > 1)
            or (resume and (every or cron))
            or (every and cron)
        ):
            raise MlopsError(f"{' and '.join(changes)} cannot be combined")
        if (start or tz) and not (every or cron):
            raise MlopsError("--start and --tz go with --every or --cron")
        app, paused = obj.app(), pause if (pause or resume) else None
        if remove:
            rows = app.schedule_off(name, monitor_id)
        elif not (every or cron) and paused is not None:
            rows = (app.schedule_pause if pause else app.schedule_resume)(name, monitor_id)
        else:
            rows = app.schedule_set(
                name,
                monitor_id,
                every=every,
                cron=cron,
                tz=tz,
                start=start or None,
                paused=paused,
                remove=remove,
            )
    queue = _queue(obj) if list_ else {}
    echo_result(
        rows,
        as_json=as_json,
        empty="no schedules: set one with `mlops monitor schedule --name NAME --every 1h`",
        header=("DEPLOYMENT", "MONITOR", "SCHEDULE", "STATUS", "NEXT (LOCAL TIME)", "NOW", "LATEST RUN"),
        row=lambda r: _schedule_row(r, queue.get(r.monitor_instance_id)),
        to_json=lambda rows: [{**r.to_dict(), "evaluation": queue.get(r.monitor_instance_id)} for r in rows],
    )


def _schedule_row(r: ScheduleRow, evaluation: str | None) -> tuple[str, ...]:
    """A schedule listed, set or changed, as its table line (a removed one: "removed")."""
    s = r.schedule
    return (
        str(r.deployment_name),
        r.monitor_id,
        (s.in_words or s.every or "-") if s else "-",
        s.status if s else "removed",
        ", ".join(t[:19].replace("T", " ") for t in s.next_times) if s and s.next_times else "-",
        evaluation or "-",
        _latest(r.latest_run),
    )


def _queue(obj: CliContext) -> dict[str, str]:
    """Monitor instance id -> 'running' or 'queued (n)', from the local service's scheduler."""
    state = obj.app().schedule_queue()
    out = {j["monitor_instance_id"]: "running" for j in state.get("running", [])}
    for n, j in enumerate(state.get("queued", []), 1):
        out[j["monitor_instance_id"]] = f"queued ({n})"
    return out


def _latest(run: RunView | None) -> str:
    if not run:
        return "-"
    return f"{run.state} {run.completed_at or run.started_at or ''}".strip()


# --- alerts --------------------------------------------------------------------------------------


@click.command("alerts")
@click.option("--name", help="Only this deployment's alerts.")
@click.option("--since", help="Only alerts measured since: an ISO time or a duration ago (30m, 2h, 1d).")
@click.option("--unacknowledged", is_flag=True, help="Only the alerts nobody acknowledged yet.")
@click.option("--ack", "ack_ids", multiple=True, metavar="ID", help="Acknowledge this alert (id or prefix).")
@click.option("--ack-all", is_flag=True, help="Acknowledge every alert (of --name).")
@click.option(
    "--resend",
    "resend_ids",
    multiple=True,
    metavar="ID",
    help="Send this notification's failed deliveries again (id or prefix; 'all': every failed one).",
)
@_json
@pass_obj
def alerts(
    obj: CliContext,
    name: str | None,
    since: str | None,
    unacknowledged: bool,
    ack_ids: tuple[str, ...],
    ack_all: bool,
    resend_ids: tuple[str, ...],
    as_json: bool,
) -> None:
    """Measurements that violated a threshold, newest first (read from the backend's
    measurements, so on cpd from OpenScale's), each with its deliveries to the notification
    channels; then the deliveries still pending or failed."""
    app = obj.app()
    if ack_ids or ack_all:
        count = app.alert_acknowledge(list(ack_ids), deployment_name=name)
        click.echo(f"acknowledged {count} alert(s)")
        return
    if resend_ids:
        ids = None if "all" in resend_ids else list(resend_ids)
        click.echo(f"queued {app.notification_resend(ids)} failed delivery(ies) again")
        return
    app.alerts_sync(name)
    found = app.alerts(name, since=since, unacknowledged=unacknowledged)
    outbox = app.deliveries(name)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for d in outbox:
        by_source.setdefault(d["source_id"], []).append(d)
    rows = [{**r.to_dict(), "deliveries": by_source.get(r.alert_id, [])} for r in found]
    if as_json:  # the alerts, each with its deliveries (other kinds: `monitor notify --deliveries`)
        echo_json(rows)
        return
    echo_result(
        rows,
        as_json=as_json,
        empty="no alerts",
        header=("ALERT ID", "MEASURED", "DEPLOYMENT", "MONITOR", "VIOLATIONS", "ACK", "NOTIFIED"),
        row=lambda r: (
            r["alert_id"][:8],
            r["measured_at"],
            r["deployment_name"],
            r["monitor_id"],
            "; ".join(
                f"{v['metric']} {num(v['value'])} ({v['direction']} limit {num(v['limit'])})"
                for v in r["violations"]
            ),
            "yes" if r["acknowledged_at"] else "no",
            _notified(r["deliveries"]) if r["opens_episode"] else "-",
        ),
    )
    waiting = [d for d in outbox if d["state"] != "delivered"]
    if waiting:
        click.echo("\nDeliveries not done (resend a failed one with --resend ID):")
        _deliveries_table(waiting)


def _deliveries_table(rows: list[dict[str, Any]]) -> None:
    echo_table(
        ("NOTIFICATION", "KIND", "CHANNEL", "STATE", "ATTEMPTS", "NEXT", "LAST ERROR"),
        [
            (
                d["notification_id"][:8],
                d["kind"],
                f"{d['channel_id']} {d['channel']}",
                d["state"],
                str(d["attempts"]),
                d["next_attempt_at"] or "-",
                d["last_error"] or "-",
            )
            for d in rows
        ],
    )


def _notified(deliveries: list[dict[str, Any]]) -> str:
    """An alert's deliveries in a word or two: 'yes', '1 pending', '1 failed', 'no channel'."""
    if not deliveries:
        return "no channel"
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d["state"]] = counts.get(d["state"], 0) + 1
    if set(counts) == {"delivered"}:
        return "yes"
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if state != "delivered")


# --- notify --------------------------------------------------------------------------------------


@click.command("notify")
@click.option("--webhook", metavar="URL", help="POST each new alert as JSON to this URL (kept secret).")
@click.option("--command", metavar="CMD", help="Run this shell command with each new alert as JSON on stdin.")
@click.option(
    "--on",
    "on",
    metavar="KINDS",
    help="With --webhook/--command: what to send, comma-separated from alert, episode_end,"
    " evaluation_failed.  [default: alert]",
)
@click.option(
    "--test", is_flag=True, help="With --webhook/--command: send a sample first; add only if accepted."
)
@click.option("--list", "list_", is_flag=True, help="List the notification channels.")
@click.option(
    "--deliveries", is_flag=True, help="List the outbox: every delivery with its state and attempts."
)
@click.option("--remove", "remove_id", metavar="ID", help="Remove this channel.")
@_json
@pass_obj
def notify(
    obj: CliContext,
    webhook: str | None,
    command: str | None,
    on: str | None,
    test: bool,
    list_: bool,
    deliveries: bool,
    remove_id: str | None,
    as_json: bool,
) -> None:
    """The workspace's notification channels: each alert that starts a violation episode is sent
    to every channel once (not again while the metric stays violated), retried until the
    channel accepts it (see `mlops monitor alerts`); optionally episode ends and failed
    scheduled evaluations too."""
    chosen = [
        o
        for o, v in (
            ("--webhook", webhook),
            ("--command", command),
            ("--list", list_),
            ("--deliveries", deliveries),
            ("--remove", remove_id),
        )
        if v
    ]
    if len(chosen) != 1:
        raise MlopsError("give one of --webhook URL, --command CMD, --list, --deliveries or --remove ID")
    if (on or test) and not (webhook or command):
        raise MlopsError("--on and --test go with --webhook URL or --command CMD")
    if deliveries:
        rows = obj.app().deliveries()
        if as_json:
            echo_json(rows)
        elif not rows:
            click.echo("no deliveries")
        else:
            _deliveries_table(rows)
        return
    if remove_id:
        obj.app().channel_remove(remove_id)
        click.echo(f"removed channel {remove_id}")
        return
    if webhook or command:
        kinds = [k.strip() for k in on.split(",") if k.strip()] if on else None
        added = obj.app().channel_add(webhook=webhook, command=command, on=kinds, test=test)
        click.echo(
            f"added {added['kind']} channel {added['channel_id']}: {added['target']} (on {', '.join(added['on'])})"
            + (" after a test notification it accepted" if test else "")
        )
        return
    echo_result(
        obj.app().channels(),
        as_json=as_json,
        empty="no notification channels",
        header=("CHANNEL ID", "KIND", "TARGET", "ON", "CREATED"),
        row=lambda r: (r["channel_id"], r["kind"], r["target"], ",".join(r["on"]), r["created_at"]),
    )
