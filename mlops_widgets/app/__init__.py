"""The application core: one object per workspace and backend, one method per user action.

    app = App(workspace, "local")
    plan = app.deployment_delete_plan("demo")      # what a delete would affect, for a confirmation
    app.deploy_delete("demo", remove_monitor=False) # undeploy; its monitors stay, unscheduled

The CLI, the panel and the server extension call these methods instead of ops and the runner,
so an action validates once, is recorded once in the audit trail (a template run or an event of
the same action name and parameters, whichever front end asked) and keeps the workflow's
invariants in one place:

- no schedule outlives its deployment: deleting a deployment whose monitors stay takes their
  schedules off (the entry keeps its `schedule` settings for a later `monitor create`);
- editing an entry keeps each monitor's schedule unless the edit states one;
- every state change is an event (`deploy.*`, `config.*`, `entry.update`, `monitor.*`,
  `train.stop`).

Front ends render results and errors their own way; methods raise `MlopsError` with complete
messages. Cheap to create: nothing is opened until an action needs it, so a panel thread (whose
backend is its own) builds one per call.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_widgets.app.results import DeletionPlan, DeploymentDeleted, EntryEdited
from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.errors import MlopsError
from mlops_widgets.runner import events
from mlops_widgets.runner.trail import RunRecord
from mlops_widgets.workspace import Workspace

MONITOR_TEMPLATE = "A3_OpenScale_Configuration"
MONITORS_KEY = "openscale_custom_metric_provider"


def with_kept_schedules(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` with each monitor's `schedule` from `stored` where `new` keeps that monitor but
    states no schedule (a form or a file that never showed it): replacing an entry never drops
    a schedule silently (`monitor create` would then take it off the instance)."""
    out = copy.deepcopy(new)
    old = stored.get(MONITORS_KEY) or {}
    for mid, settings in (out.get(MONITORS_KEY) or {}).items():
        before = old.get(mid)
        if isinstance(settings, dict) and "schedule" not in settings and isinstance(before, dict):
            if before.get("schedule"):
                settings["schedule"] = before["schedule"]
    return out


@dataclass(frozen=True)
class ClonePlan:
    """A cloned notebook's origin ({"run_id", "template"} or {"template", ...}), the literal
    values of its injected parameters cell, and the secrets it reads."""

    origin: dict[str, str]
    parameters: dict[str, Any]
    secret_names: list[str]


def clone_plan(path: Path) -> ClonePlan:
    """Read a clone (see App.clone_plan); one clear error when it is not one."""
    import ast
    import json

    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MlopsError(f"{path.name}: cannot read the notebook ({exc})") from None
    origin = (nb.get("metadata", {}).get("mlops") or {}).get("cloned_from")
    if not origin:
        raise MlopsError(
            f"{path.name} was not cloned from a template or a run: nothing to run in the audit trail"
        )
    params: dict[str, Any] = {}
    secrets: list[str] = []
    for cell in nb.get("cells", []):
        if "injected-parameters" not in (cell.get("metadata", {}).get("tags") or []):
            continue
        source = "".join(cell.get("source", ""))
        # The template's defaults left as written in a clone's one parameters cell: not parameters.
        defaults = cell.get("metadata", {}).get("mlops_defaults") or {}
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise MlopsError(f"the parameters cell does not parse: {exc.msg} (line {exc.lineno})") from None
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                name, value = node.targets[0].id, node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                name, value = node.target.id, node.value
            else:
                continue
            if name in defaults and ast.get_source_segment(source, value) == defaults[name]:
                continue
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "secret":
                secrets.append(name)
                continue
            try:
                params[name] = ast.literal_eval(value)
            except ValueError:
                raise MlopsError(
                    f"parameter {name}: its value must be a plain value (text, number, list, dict), not code"
                ) from None
    return ClonePlan(origin, params, secrets)


class App:
    """Every user action on one workspace and backend (see the module)."""

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        backend: Backend | str | None = None,
    ) -> None:
        if isinstance(backend, Backend):
            self._backend: Backend | None = backend
            self.workspace = backend.workspace
            self.backend_name = backend.name
        else:
            from mlops_widgets.backends import backend_name

            self._backend = None
            self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
            self.backend_name = backend_name(backend)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = get_backend(self.backend_name, self.workspace)
        return self._backend

    def _event(
        self, action: str, params: dict[str, Any], deployment_name: str | None = None
    ) -> AbstractContextManager[events.Outcome]:
        return events.recording(
            self.workspace, action, params, deployment_name=deployment_name, backend=self.backend_name
        )

    # --- template runs -------------------------------------------------------------------------

    def run(
        self,
        template: str | os.PathLike[str],
        params: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> RunRecord:
        """Run a template on this workspace and backend (validated and recorded by the runner);
        a failed or cancelled run comes back as its record."""
        from mlops_widgets.runner import run_template

        return run_template(
            template,
            params,
            secrets=secrets,
            workspace=self.workspace,
            backend=self.backend_name,
            progress=progress,
            cancel=cancel,
            timeout=timeout,
            cwd=cwd,
        )

    def rerun(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> RunRecord:
        """Run a past run again (its template copy; `params` replace some; its secrets again)."""
        from mlops_widgets.runner import rerun

        return rerun(
            run_id,
            params=params or None,
            workspace=self.workspace,
            secrets=secrets or None,
            progress=progress,
            cancel=cancel,
            timeout=timeout,
        )

    def clone_plan(self, path: Path) -> ClonePlan:
        """What running the cloned notebook `path` in the audit trail does: its origin (a run or
        a template), the values of its parameters cell and the secrets it asks for."""
        return clone_plan(path)

    def run_clone(
        self,
        path: Path,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> RunRecord:
        """Run a clone's parameters: a clone of a run re-runs it with them, a clone of a
        template runs the template (validated as any run)."""
        plan = clone_plan(path)
        if plan.origin.get("run_id"):
            return self.rerun(plan.origin["run_id"], plan.parameters, secrets=secrets, progress=progress)
        return self.run(plan.origin["template"], plan.parameters, secrets=secrets, progress=progress, cwd=cwd)

    # --- entries ---------------------------------------------------------------------------------

    def entry_add(self, entries: dict[str, dict[str, Any]], *, force: bool = False) -> list[str]:
        """Add validated entries keyed by model asset id (`force`: replace existing ones, keeping
        each monitor's schedule the new entry does not state)."""
        from mlops_widgets.ops import space

        if force:
            stored = space.list_entries(self.backend)
            entries = {k: with_kept_schedules(stored.get(k) or {}, v) for k, v in entries.items()}

        with self._event("config.add", {"model_asset_ids": sorted(entries), "force": force}) as event:
            keys = space.add_entries(self.backend, entries, force=force)
            event.result = {"added": keys}
        return keys

    def entry_delete(self, *, name: str | None = None, model_asset_id: str | None = None) -> str:
        """Delete one entry, found by deployment name or model asset id; returns its key."""
        from mlops_widgets.ops import space

        params = {"deployment_name": name, "model_asset_id": model_asset_id}
        with self._event("config.delete", params, deployment_name=name) as event:
            key = space.delete_entry(self.backend, name=name, model_asset_id=model_asset_id)
            event.result = {"model_asset_id": key}
        return key

    def entry_edit(
        self,
        model_asset_id: str,
        entry: dict[str, Any],
        *,
        cwd: str | None = None,
        progress: Callable[[int, int | None, str], None] | None = None,
    ) -> EntryEdited:
        """Replace the entry of `model_asset_id` by `entry` (validated here), keeping each
        monitor's schedule the edit does not state; when its deployment is monitored, the
        monitors are configured again (a template run) and take the new thresholds."""
        from mlops_widgets.config import validate_entry
        from mlops_widgets.monitors import known_definitions
        from mlops_widgets.ops import space
        from mlops_widgets.ops.monitor_views import monitor_list
        from mlops_widgets.runner import run_template

        new, _warnings = validate_entry(entry, definitions=known_definitions(self.workspace))
        name = (new.get("wmla_deployment") or {}).get("deployment_name") or None
        params = {"model_asset_id": model_asset_id, "monitors": sorted(new.get(MONITORS_KEY) or {})}

        def replace(stored: dict[str, Any]) -> None:
            kept = with_kept_schedules(stored, new)
            stored.clear()
            stored.update(kept)

        with self._event("entry.update", params, deployment_name=name) as event:
            space.update_entry(self.backend, model_asset_id, replace)
            event.result = {"model_asset_id": model_asset_id}
        monitored = bool(name) and any(m.get("deployment_name") == name for m in monitor_list(self.backend))
        run = None
        if monitored:
            if progress:
                progress(1, 2, f"configuring the monitors of {name} again")
            run = run_template(
                MONITOR_TEMPLATE,
                {"deployment_name": name},
                backend=self.backend,
                workspace=self.workspace,
                cwd=cwd,
            )
        return EntryEdited(model_asset_id, name, monitored, run)

    # --- deployments -----------------------------------------------------------------------------

    def deploy_start(
        self,
        name: str,
        *,
        wait: bool = True,
        timeout: float | None = None,
        progress: Callable[[int, int | None, str], None] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start a deployment (and the local service when it is down), waiting up to `timeout`
        seconds (default ops.deploy's) unless not `wait`; returns its view."""
        from mlops_widgets.ops import deploy

        with self._event("deploy.start", {"deployment_name": name, "wait": wait}, name) as event:
            view = deploy.start(
                self.backend,
                name,
                wait=wait,
                timeout=deploy.WAIT_TIMEOUT if timeout is None else timeout,
                progress=progress,
                secret_args=secret_args,
            )
            event.result = {"status": view["status"]}
        return view

    def deploy_stop(self, name: str) -> dict[str, Any]:
        """Stop a deployment's kernels; returns its view."""
        from mlops_widgets.ops import deploy

        with self._event("deploy.stop", {"deployment_name": name}, name) as event:
            view = deploy.stop(self.backend, name)
            event.result = {"status": view["status"]}
        return view

    def deployment_delete_plan(self, name: str) -> DeletionPlan:
        """What `deploy_delete(name)` would affect, for the question asked before it."""
        from mlops_widgets.errors import NotFoundError
        from mlops_widgets.ops import schedule, space

        try:
            key: str | None = space.get_entry(self.backend, deployment_name=name)[0]
        except NotFoundError:
            key = None
        try:
            self.backend.inference.view(name)
            deployed = True
        except NotFoundError:
            deployed = False
        instances = schedule.monitor_instances_of(self.backend, name)
        return DeletionPlan(
            deployment_name=name,
            deployed=deployed,
            model_asset_id=key,
            monitors=sorted(i["monitor_id"] for i in instances),
            schedules=sorted(
                f"{i['monitor_id']} every {i['schedule']['every']}, {i['schedule']['status']}"
                for i in instances
                if i["schedule"]
            ),
        )

    def deploy_delete(
        self, name: str, *, remove_monitor: bool = False, remove_config: bool = False
    ) -> DeploymentDeleted:
        """Undeploy (stopping first); drop its monitors (`remove_monitor`) or take their schedules
        off; drop the entry (`remove_config`) or clear its deployment fields."""
        from mlops_widgets.ops import deploy, schedule

        options = {"remove_monitor": remove_monitor, "remove_config": remove_config}
        with self._event("deploy.delete", {"deployment_name": name, **options}, name) as event:
            unscheduled = [] if remove_monitor else schedule.unschedule(self.backend, name)
            done = deploy.deploy_delete(self.backend, name, **options)
            event.result = {**done, "unscheduled": unscheduled}
        return DeploymentDeleted(**done, unscheduled=unscheduled)

    # --- monitors --------------------------------------------------------------------------------

    def monitor_delete(self, name: str) -> dict[str, Any]:
        """Drop the deployment's subscription with its monitors, runs and measurements."""
        from mlops_widgets.ops import monitor

        with self._event("monitor.delete", {"deployment_name": name}, name) as event:
            event.result = monitor.monitor_delete(self.backend, name)
        return dict(event.result)

    def monitor_register(self, monitor_id: str, provider: str) -> dict[str, Any]:
        """Register a monitor id computed by an existing provider."""
        from mlops_widgets.ops import monitor

        with self._event("monitor.register", {"monitor_id": monitor_id, "provider": provider}) as event:
            event.result = monitor.monitor_register(self.backend, monitor_id, provider)
        return dict(event.result)

    def monitor_publish(self, monitor_id: str, *, software_spec: str | None = None) -> dict[str, Any]:
        """Make a monitor's provider callable by the monitoring service (the original's B2)."""
        from mlops_widgets.ops.publish import publish

        params = {"monitor_id": monitor_id, "software_spec": software_spec}
        with self._event("monitor.publish", params) as event:
            event.result = publish(self.backend, monitor_id, software_spec=software_spec)
        return dict(event.result)

    def schedule_set(
        self,
        name: str,
        monitor_id: str | None = None,
        *,
        paused: bool | None = None,
        remove: bool = False,
        **repeat: Any,
    ) -> list[dict[str, Any]]:
        """Give the deployment's monitors (or one) a schedule (`repeat`: every, or cron and tz;
        start), pause, resume or remove it."""
        from mlops_widgets.ops import schedule

        given = {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in repeat.items() if v is not None
        }
        params = {"deployment_name": name, "monitor_id": monitor_id, "every": None, **given}
        params.update(paused=paused, remove=remove)
        with self._event("monitor.schedule", params, name) as event:
            rows = schedule.set_schedule(
                self.backend, name, monitor_id, paused=paused, remove=remove, **repeat
            )
            event.result = {"schedules": rows}
        return rows

    # --- alerts and notification channels ------------------------------------------------------

    def alert_acknowledge(
        self, alert_ids: list[str] | None = None, *, deployment_name: str | None = None
    ) -> int:
        """Acknowledge these alerts (ids or unique prefixes), or every unacknowledged one (of
        `deployment_name`); returns how many."""
        from mlops_widgets.ops import alerts

        params = {"alert_ids": alert_ids or [], "deployment_name": deployment_name}
        with self._event("alert.acknowledge", params, deployment_name) as event:
            count = alerts.acknowledge(self.workspace, alert_ids, deployment_name=deployment_name)
            event.result = {"acknowledged": count}
        return count

    def channel_add(
        self,
        *,
        webhook: str | None = None,
        command: str | None = None,
        on: list[str] | None = None,
        test: bool = False,
    ) -> dict[str, Any]:
        """Add a webhook or command notification channel (see ops.channels); the record names
        its kind and id, never its URL or command (they may carry credentials)."""
        from mlops_widgets.ops import channels

        params = {"kind": "webhook" if webhook else "command", "on": on, "test": test}
        with self._event("channel.add", params) as event:
            added = channels.add_channel(self.workspace, webhook=webhook, command=command, on=on, test=test)
            event.result = {"channel_id": added["channel_id"], "on": added["on"]}
        return added

    def channel_remove(self, channel_id: str) -> None:
        """Remove a notification channel (its pending deliveries are dropped)."""
        from mlops_widgets.ops import notify

        with self._event("channel.remove", {"channel_id": channel_id}):
            notify.remove_channel(self.workspace, channel_id)

    def notification_resend(self, notification_ids: list[str] | None = None) -> int:
        """Queue failed deliveries again (of these notifications, ids or unique prefixes, or
        every failed one) and attempt them now; returns how many were queued."""
        from mlops_widgets.ops import notify

        with self._event("notification.resend", {"notification_ids": notification_ids or []}) as event:
            count = notify.resend(self.workspace, notification_ids)
            attempts = notify.deliver_due(self.workspace)
            event.result = {"queued": count, "delivered": sum(1 for a in attempts if a["ok"])}
        return count

    # --- training --------------------------------------------------------------------------------

    def train_stop(self, job_id: str) -> dict[str, Any]:
        """Stop a training job (every process of every worker); returns the job."""
        from mlops_widgets.ops import train

        with self._event("train.stop", {"job_id": job_id}) as event:
            job = train.stop(self.backend, job_id)
            event.result = {"state": job["state"]}
        return job
