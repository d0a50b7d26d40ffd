"""`mlops provider ...` and `mlops monitor ...`: OpenScale service providers and monitors, as the
original's `monitor` commands. Creating a provider or monitors runs its template (C1, A3) so the
audit trail keeps the executed notebook; the other commands read (or evaluate) directly.
"""

from __future__ import annotations

from typing import Any

import click

from mlops_widgets.app import DEFAULT_SERVICE_PROVIDER as DEFAULT_PROVIDER
from mlops_widgets.app import TREND_POINTS, HistoryRow, MonitorStatus
from mlops_widgets.cli import monitor_watch
from mlops_widgets.cli._common import CliContext, dicts, echo_result, echo_table, pass_obj
from mlops_widgets.cli.monitor_watch import num as _num

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_name = click.option(
    "--name", required=True, help="Deployment name (the entry's wmla_deployment.deployment_name)."
)


def _violation_lines(violations: list[dict[str, Any]]) -> None:
    for v in violations:
        sign = "<" if v["direction"] == "lower" else ">"
        click.echo(f"    {v['metric']}: {_num(v['value'])} {sign} {v['direction']} limit {_num(v['limit'])}")


# --- provider ------------------------------------------------------------------------------------


@click.group()
def provider() -> None:
    """Create and list OpenScale service providers."""


@provider.command("create")
@click.option("--name", default=DEFAULT_PROVIDER, show_default=True, help="Service provider name.")
@pass_obj
def provider_create(obj: CliContext, name: str) -> None:
    """Create the headless service provider deployments are subscribed from (template C1);
    an existing provider of that name is reused."""
    from mlops_widgets.cli._run import run_step

    record = run_step(obj, "C1_OpenScale_Dummy_ML_Provider", {"service_provider_name": name})
    r = record.results
    verb = "created" if r.get("created") else "already exists:"
    click.echo(f"service provider {r.get('service_provider_name')!r} {verb} {r.get('service_provider_id')}")


@provider.command("list")
@_json
@pass_obj
def provider_list(obj: CliContext, as_json: bool) -> None:
    """List the service providers."""
    echo_result(
        obj.app().providers(),
        as_json=as_json,
        empty="no service providers: create one with `mlops provider create`",
        header=("SERVICE PROVIDER ID", "NAME", "TYPE", "CREATED"),
        row=lambda r: (r["service_provider_id"], r["name"], r["service_type"], r["created_at"] or "-"),
    )


# --- monitor -------------------------------------------------------------------------------------


@click.group()
def monitor() -> None:
    """Attach monitors, evaluate them and show their status."""


@monitor.command("create")
@_name
@click.option(
    "--service-provider-name", default=DEFAULT_PROVIDER, show_default=True, help="Provider to subscribe from."
)
@click.option("--evaluate", is_flag=True, help="Evaluate every monitor once after configuring it.")
@pass_obj
def create(obj: CliContext, name: str, service_provider_name: str, evaluate: bool) -> None:
    """Subscribe the deployment and create (or update) one monitor instance per monitor of its
    entry, with the entry's thresholds (template A3)."""
    from mlops_widgets.cli._run import with_progress

    app = obj.app()
    record = with_progress(
        lambda bar: app.monitor_create(
            name, service_provider_name=service_provider_name, evaluate=evaluate, progress=bar
        )
    )
    r = record.results
    click.echo(f"subscription {r.get('subscription_id')} ({name} Monitor)")
    for m in r.get("monitors") or []:
        click.echo(f"  {m['monitor_id']}: {m['action']} {m['monitor_instance_id']}")
    _print_runs(r.get("runs") or [])


def _print_runs(runs: list[dict[str, Any]]) -> None:
    for run in runs:
        if run["state"] == "error":
            click.echo(f"{run['monitor_id']}: run {run['run_id']} failed: {run['error']}")
            continue
        issues = run.get("issue_count")
        click.echo(f"{run['monitor_id']}: run {run['run_id']} {run['state']}, {_num(issues)} issue(s)")
        _violation_lines(run.get("violations") or [])


@monitor.command("run")
@_name
@click.option("--monitor", "monitor_id", help="Only this monitor (default: every monitor of the entry).")
@_json
@pass_obj
def run(obj: CliContext, name: str, monitor_id: str | None, as_json: bool) -> None:
    """Evaluate the deployment's monitors now (OpenScale's manual run, template
    A5_Monitor_Evaluation); new alerts go to the notification channels."""
    from mlops_widgets.cli._run import with_progress

    app = obj.app()
    record = with_progress(lambda bar: app.evaluate(name, monitor_id, progress=bar), check=False)
    runs = record.results.get("runs") or []
    if not runs:
        record.raise_for_status()  # it failed before evaluating: its error says why
    echo_result(runs, as_json=as_json, text=_print_runs)
    if not record.ok:
        raise click.exceptions.Exit(1)  # an evaluation failed: printed above, in the audit trail


@monitor.command("status")
@_name
@_json
@pass_obj
def status(obj: CliContext, name: str, as_json: bool) -> None:
    """The latest measurement of each monitor: ids, time, issue count and every metric outside
    its threshold (--json: every metric)."""
    echo_result(
        obj.app().monitor_status(name), as_json=as_json, text=_print_status, to_json=lambda s: s.to_dict()
    )


def _print_status(st: MonitorStatus) -> None:
    name = st.deployment_name
    click.echo(f"deployment {name}, subscription {st.subscription_id}")
    for m in st.monitors:
        head = f"{m.monitor_id}: {m.state}"
        if m.state == "not configured":
            click.echo(f"{head} (run `mlops monitor create --name {name}`)")
            continue
        run = m.latest_run
        if run and run.state == "error":
            click.echo(f"{head}: the latest run {run.id} failed ({run.completed_at}): {run.error}")
        elif run and run.state == "running":
            click.echo(f"{head}: run {run.id} started {run.started_at}")
        elif m.measurement is None:
            click.echo(f"{head} (run `mlops monitor run --name {name}`)")
        if m.measurement is not None:
            ms = m.measurement
            prefix = "  previous:" if m.state in ("error", "running") else head + ","
            click.echo(
                f"{prefix} measurement {ms.id}, run {ms.run_id}, {ms.timestamp}, {ms.issue_count} issue(s)"
            )
            _violation_lines([v.to_dict() for v in m.violations])
        sched = m.schedule
        if sched:
            when = f", next {sched.next_at}" if sched.next_at else ""
            click.echo(f"  schedule: every {sched.every}, {sched.status}{when}")


@monitor.command("history")
@_name
@click.option("--monitor", "monitor_id", help="Only this monitor.")
@click.option("--metric", help="Only this metric: its value and limit per measurement.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many measurements.")
@click.option(
    "--points",
    type=click.IntRange(min=2),
    default=TREND_POINTS,
    show_default=True,
    help="Fit each metric's trend on this many latest measurements.",
)
@_json
@pass_obj
def history(
    obj: CliContext,
    name: str,
    monitor_id: str | None,
    metric: str | None,
    limit: int | None,
    points: int,
    as_json: bool,
) -> None:
    """Past measurements of the deployment's monitors, newest first, then each metric's trend:
    its slope over the latest measurements and, when it moves toward its limit, when it is
    expected to cross it."""
    app = obj.app()
    rows = app.monitor_history(name, monitor_id, metric, limit=limit)
    trends = [
        t
        for t in app.monitor_trends(name, monitor_id, points=points)
        if metric is None or t["metric"] == metric
    ]
    if not rows and not as_json:
        click.echo(f"no measurements yet: run `mlops monitor run --name {name}`")
        return
    echo_result(
        {"measurements": rows, "trends": trends},
        as_json=as_json,
        text=lambda doc: _print_history(doc["measurements"], doc["trends"]),
        to_json=lambda doc: {**doc, "measurements": dicts(doc["measurements"])},
    )


def _print_history(rows: list[HistoryRow], trends: list[dict[str, Any]]) -> None:
    metric_rows = [(r, x) for r in rows if (x := r.reading) is not None]
    if metric_rows:
        echo_table(
            ("TIME", "MONITOR", "VALUE", "LIMIT", "VIOLATED", "MEASUREMENT ID"),
            [
                (
                    str(r.measurement.timestamp),
                    r.monitor_id,
                    _num(x.value),
                    f"{_num(x.limit)} {x.direction or ''}".strip(),
                    "yes" if x.violated else "no",
                    r.measurement.id,
                )
                for r, x in metric_rows
            ],
        )
    else:
        echo_table(
            ("TIME", "MONITOR", "ISSUES", "RUN ID", "MEASUREMENT ID"),
            [
                (
                    str(r.measurement.timestamp),
                    r.monitor_id,
                    _num(r.measurement.issue_count),
                    str(r.measurement.run_id),
                    r.measurement.id,
                )
                for r in rows
            ],
        )
    click.echo("")
    echo_table(("MONITOR", "METRIC", "LATEST", "LIMIT", "SLOPE/H", "TREND"), [_trend_row(t) for t in trends])


def _trend_row(t: dict[str, Any]) -> tuple[str, ...]:
    if t["violated"]:
        trend = "violated"
    elif t["toward_limit"]:
        trend = f"toward the limit: crosses in {_num(t['crosses_in_h'])} h ({t['crosses_at']})"
    elif t["slope_per_hour"] is not None and t["limit"] is not None:
        trend = "away from the limit"
    else:
        trend = "-"
    return (
        t["monitor_id"],
        t["metric"],
        _num(t["latest"]),
        f"{_num(t['limit'])} {t['direction'] or ''}".strip(),
        "-" if t["slope_per_hour"] is None else f"{t['slope_per_hour']:+.4g}",
        trend,
    )


@monitor.command("list")
@_json
@pass_obj
def list_(obj: CliContext, as_json: bool) -> None:
    """Subscriptions with their monitors."""
    echo_result(
        obj.app().subscriptions(),
        as_json=as_json,
        empty="no subscriptions: attach monitors with `mlops monitor create --name NAME`",
        header=("SUBSCRIPTION ID", "DEPLOYMENT", "MODEL ASSET ID", "MONITORS"),
        row=lambda r: (
            r.subscription.id,
            r.subscription.deployment_name or "-",
            r.model_asset_id or "-",
            ",".join(m.monitor_id for m in r.monitors) or "-",
        ),
        to_json=dicts,
    )


@monitor.command("delete")
@_name
@pass_obj
def delete(obj: CliContext, name: str) -> None:
    """Drop the deployment's subscription with its monitors, runs and measurements."""
    out = obj.app().monitor_delete(name)
    for sub_id in out["deleted_subscription_ids"]:
        click.echo(f"deleted subscription {sub_id}")


@monitor.command("thresholds")
@click.option(
    "--monitor", "monitor_id", required=True, help="Monitor definition id, e.g. segmentation_metrics."
)
@_json
@pass_obj
def thresholds(obj: CliContext, monitor_id: str, as_json: bool) -> None:
    """A monitor's default thresholds, in the entry's shape (ready to paste under `thresholds`)."""
    echo_result(obj.app().monitor_thresholds(monitor_id), as_json=as_json, text=_print_thresholds)


def _print_thresholds(thresholds: dict[str, Any]) -> None:
    for name, t in thresholds.items():
        value, direction = t["threshold"]
        click.echo(f"{name}: {{threshold: [{_num(value)}, {direction}]}}")


@monitor.command("compute")
@click.option(
    "--monitor", "monitor_id", required=True, help="Monitor definition id, e.g. segmentation_metrics."
)
@click.option(
    "--dir-gt", required=True, type=click.Path(file_okay=False), help="Folder of ground-truth images."
)
@click.option(
    "--dir-pred", required=True, type=click.Path(file_okay=False), help="Folder of predicted images."
)
@click.option("--most-recent", type=float, help="Only files modified in the last DAYS days (default: all).")
@_json
@pass_obj
def compute(
    obj: CliContext, monitor_id: str, dir_gt: str, dir_pred: str, most_recent: float | None, as_json: bool
) -> None:
    """Run a monitor's provider on two folders, with no subscription, against its default
    thresholds (test a provider before attaching it)."""
    out = obj.app().monitor_compute(monitor_id, dir_gt, dir_pred, most_recent=most_recent)
    echo_result(out, as_json=as_json, text=_print_computed)


def _print_computed(out: dict[str, Any]) -> None:
    echo_table(
        ("METRIC", "VALUE", "LIMIT", ""),
        [
            (
                m["metric"],
                _num(m["value"]),
                f"{_num(m['limit'])} {m['direction']}",
                "VIOLATED" if m["violated"] else "",
            )
            for m in out["metrics"]
        ],
    )
    click.echo(f"{out['issue_count']} issue(s)")


@monitor.command("register")
@click.option("--monitor", "monitor_id", required=True, help="New monitor id, e.g. segmentation_metrics_v22.")
@click.option(
    "--provider", "provider_name", required=True, help="Provider computing it, e.g. segmentation_metrics."
)
@pass_obj
def register(obj: CliContext, monitor_id: str, provider_name: str) -> None:
    """Register a monitor id computed by an existing provider (a versioned copy of a built-in,
    as the original created on the server), so entries may use it."""
    out = obj.app().monitor_register(monitor_id, provider_name)
    click.echo(f"registered {out['monitor_id']} ({len(out['metrics'])} metrics, provider {provider_name})")


@monitor.command("publish")
@click.option("--monitor", "monitor_id", required=True, help="Monitor id, e.g. segmentation_metrics.")
@click.option("--software-spec", help="cpd: WML runtime that provides mlops-widgets[cpd].")
@_json
@pass_obj
def publish(obj: CliContext, monitor_id: str, software_spec: str | None, as_json: bool) -> None:
    """Make a monitor's provider callable by the monitoring service and register its definition
    (the original's B2); its integrated system id goes into the space's monitor_metadata.yml."""
    echo_result(
        obj.app().monitor_publish(monitor_id, software_spec=software_spec),
        as_json=as_json,
        text=lambda out: click.echo(
            f"published {out['monitor_id']}: integrated system {out['integrated_system_id']}"
        ),
    )


@monitor.command("definitions")
@_json
@pass_obj
def definitions(obj: CliContext, as_json: bool) -> None:
    """The monitor definitions available, with their metrics."""
    echo_result(
        obj.app().monitor_definitions(),
        as_json=as_json,
        header=("MONITOR ID", "METRICS", "NAME"),
        row=lambda r: (r["monitor_id"], str(len(r["metrics"])), r["name"]),
    )


# Schedules, alerts and notification channels: their own module, under `mlops monitor`.
for _command in (monitor_watch.schedule, monitor_watch.alerts, monitor_watch.notify):
    monitor.add_command(_command)
