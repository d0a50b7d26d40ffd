"""Entries: stage (from files or a training job), add, delete, edit (an edit keeps each monitor's schedule it does not state and
configures a monitored deployment's monitors again)."""

from __future__ import annotations

import copy
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_widgets.app._base import AppBase
from mlops_widgets.app.results import EntryEdited
from mlops_widgets.errors import MlopsError
from mlops_widgets.runner.trail import RunRecord

if TYPE_CHECKING:
    from mlops_widgets.ops.space import OnClash

MONITOR_TEMPLATE = "A3_OpenScale_Configuration"
MONITORS_KEY = "openscale_custom_metric_provider"
STAGE_TEMPLATE = "A_MLOps_Pipeline"


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


class EntriesMixin(AppBase):
    """Entry actions and queries of `App`."""

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every entry of the deployment metadata, keyed by model asset id (a query: nothing
        recorded)."""
        from mlops_widgets.ops import space

        return space.list_entries(self.backend)

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
        monitored = bool(name) and any(
            m.subscription.deployment_name == name for m in monitor_list(self.backend)
        )
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

    # --- staging ---------------------------------------------------------------------------------

    def stage_clashes(self, *paths: str | os.PathLike[str]) -> list[str]:
        """Names of the space's assets a stage of these paths would clash with (for a question
        asked before `stage`)."""
        from mlops_widgets.ops import space

        return sorted({a.name for a in space.clashes(self.backend, *(str(p) for p in paths))})

    def stage(
        self,
        path_model: str | os.PathLike[str] | None,
        path_dependency: str | os.PathLike[str],
        entry: dict[str, Any],
        *,
        on_clash: OnClash = "error",
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> RunRecord:
        """Upload the model (None: the deployment folder holds it) and the deployment folder and
        write the entry (template A_MLOps_Pipeline); `on_clash` ("error", "overwrite", "new") says
        what to do with assets of the same names. Refused before any upload when a path is
        missing, a name clashes or a deployed model would be replaced."""
        from mlops_widgets.ops import space

        if on_clash not in ("error", "overwrite", "new"):
            raise MlopsError(f"on_clash must be error, overwrite or new, not {on_clash!r}")
        model = Path(path_model).resolve() if path_model else None
        dependency = Path(path_dependency).resolve()
        space.check_stage(self.backend, model, dependency, on_clash)
        params = {
            "path_model": str(model) if model else "",
            "path_dependency": str(dependency),
            "entry": entry,
            "on_clash": on_clash,
        }
        record = self.run(STAGE_TEMPLATE, params, progress=progress, cancel=cancel)
        if record.ok:  # a stage of the same model that ran meanwhile may have replaced this one's
            space.still_staged(self.backend, record.results["model_asset_id"])
        return record

    def stage_from_job(
        self,
        job_id: str,
        path_dependency: str | os.PathLike[str],
        entry: dict[str, Any],
        *,
        on_clash: OnClash = "error",
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> RunRecord:
        """`stage` with a finished training job's output folder as the model; the entry records
        the job (`training_job`: its lineage)."""
        from mlops_widgets.ops import train

        with tempfile.TemporaryDirectory(prefix="mlops-job-output-") as tmp:
            model, lineage = train.fetch_output(self.backend, job_id, Path(tmp))
            return self.stage(
                model,
                path_dependency,
                {**entry, "training_job": lineage},
                on_clash=on_clash,
                progress=progress,
                cancel=cancel,
            )
