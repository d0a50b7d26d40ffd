"""`mlops service status|start|stop|logs`: the workspace's local service (inference, monitor
schedules) and its supervisor, which starts it again when it dies (docs/local-service.md)."""

from __future__ import annotations

import json

import click

from mlops_widgets.cli._common import CliContext, echo_log, pass_obj

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def service() -> None:
    """The workspace's local service: status, start, stop, logs."""


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m {secs}s"


@service.command("status")
@_json
@pass_obj
def status(obj: CliContext, as_json: bool) -> None:
    """Whether the service runs: PID, uptime, threads, file descriptors, memory, its supervisor
    and restarts, the evaluations running and queued, the next schedule slots."""
    st = obj.app().service_status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    if st["running"]:
        click.echo(f"service: running, pid {st['pid']}, {st['url']}, up {_duration(st.get('uptime_s', 0))}")
        click.echo(
            f"  threads {st.get('threads', '-')}, open files {st.get('fds', '-')}, memory {st.get('rss_mb', '-')} MB"
        )
    else:
        click.echo("service: not running")
    if st["stale_pid"]:
        click.echo(f"  service.json named pid {st['stale_pid']}, which is gone: the next service replaces it")
    if st["supervisor_pid"]:
        last = st["last_exit"]
        died = f", last died {last['at']} ({last['how']})" if last else ""
        back = f"; starting it again in {st['next_start_in_s']:g} s" if st.get("next_start_in_s") else ""
        click.echo(f"supervisor: pid {st['supervisor_pid']}, {st['restarts']} restart(s){died}{back}")
    else:
        click.echo("supervisor: not running")
    ev = st["evaluations"]
    if st["running"]:
        click.echo(
            f"evaluations: {len(ev['running'] or [])} running, {len(ev['queued'] or [])} queued "
            f"(at most {ev['bound'] or '-'} at once)"
        )
        for job in ev["running"] or []:
            click.echo(
                f"  running  {job['deployment_name']}/{job['monitor_id']} (slot {job.get('slot', '-')})"
            )
        for n, job in enumerate(ev["queued"] or [], 1):
            click.echo(
                f"  queued {n} {job['deployment_name']}/{job['monitor_id']} (slot {job.get('slot', '-')})"
            )
    if st["next_slots"]:
        click.echo("next slots (local time):")
        for s in st["next_slots"]:
            click.echo(f"  {s['at'][:19].replace('T', ' ')}  {s['deployment_name']}/{s['monitor_id']}")


@service.command("start")
@pass_obj
def start(obj: CliContext) -> None:
    """Start the service under its supervisor (nothing happens when it runs)."""
    info = obj.app().service_start()
    click.echo(f"service running, pid {info['pid']}, {info['url']}")


@service.command("stop")
@pass_obj
def stop(obj: CliContext) -> None:
    """Stop the service, its supervisor and every kernel it started; schedules wait until it
    starts again (a deploy start, `mlops service start`, a schedule set)."""
    click.echo("service stopped" if obj.app().service_stop() else "service was not running")


@service.command("logs")
@click.option("--tail", type=click.IntRange(min=0), default=50, show_default=True, help="Last lines.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing lines as they come (Ctrl-C ends).")
@pass_obj
def logs(obj: CliContext, tail: int, follow: bool) -> None:
    """The service's log (service.log: requests, schedules, its supervisor's notes)."""
    lines = obj.app().service_log(tail=tail, follow=follow)
    echo_log(lines, tail=tail, empty="the service has written no log yet")
