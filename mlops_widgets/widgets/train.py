"""The Train tab: the A1_Submit_WMLA_Training form, the training jobs with their state and log,
Stop, and "Stage this model" (a finished job's output staged as the model, its entry naming the
job).

Submitting runs template A1 through the runner (the audit trail keeps it); staging runs
A_MLOps_Pipeline on the job's output. Secret job variables are named here and read from the
kernel's environment ($MLOPS_SECRET_<name> or $<name>): their values are never typed, shown or
stored.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import ipywidgets as w

from mlops_widgets.app import DISTRIBUTED, FRAMEWORKS, JOB_ENDED, JOB_FINISHED, JobView, from_environment
from mlops_widgets.errors import MlopsError
from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._forms import (
    Action,
    error_html,
    number_text,
    ok_html,
    read_number,
    section,
    set_options,
)
from mlops_widgets.widgets._style import LABEL, grow, local_time, name_only
from mlops_widgets.widgets._task import STAGING, error_text

LOG_LINES = 200
SUBMIT_KEYS = {"training-submit"}  # a submission makes a new job: it conflicts with no other step


def _job_keys(job_id: str | None) -> set[str]:
    """What a step on a training job works on."""
    return {f"job:{job_id or ''}"}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class TrainTab:
    """Submit training jobs and follow them; stage a finished job's output."""

    title = "Train"

    def __init__(self, ctx: PanelContext) -> None:
        from mlops_widgets import examples

        self.ctx = ctx
        self.loaded = False
        self.jobs: list[JobView] = []
        self.last_model_asset_id: str | None = None
        self.framework = w.Dropdown(
            description="Framework", options=list(FRAMEWORKS), value="PyTorch", style=LABEL, layout=grow()
        )
        self.main = w.Text(description="Main file", value="train.py", style=LABEL, layout=grow())
        self.files = w.Textarea(
            description="Files",
            style=LABEL,
            layout=grow(18, 60),
            value="\n".join([str(examples.TRAINING / "train.py"), str(examples.SYNTHETIC)]),
            placeholder="one path per line (wildcards allowed)",
        )
        self.folders = w.Textarea(
            description="Folders",
            style=LABEL,
            layout=grow(18, 60),
            placeholder="one folder per line, copied with its name",
        )
        self.workers = number_text(
            "Training workers", 1, css="mlops-train-workers", style=LABEL, layout=grow(16, 22)
        )
        self.devices = number_text(
            "GPUs / worker", 0, css="mlops-train-devices", style=LABEL, layout=grow(16, 22)
        )
        self.memory = w.Text(
            description="Memory", value="8g", placeholder="512m, 8g", style=LABEL, layout=grow(16, 22)
        )
        self.volume = w.Text(
            description="Data volume", placeholder="storage volume (optional)", style=LABEL, layout=grow()
        )
        self.data_path = w.Text(
            description="Data path", placeholder="folder on the volume: $DATA_DIR", style=LABEL, layout=grow()
        )
        self.env = w.Textarea(
            description="Variables", placeholder="NAME=value, one per line", style=LABEL, layout=grow(18, 60)
        )
        self.secret_names = w.Text(
            description="Secret vars",
            style=LABEL,
            layout=grow(),
            placeholder="names, values from the environment ($MLOPS_SECRET_<name>)",
        )
        self.volumes: list[str] | None = None  # the backend's storage volumes (None: not read)
        self.form_error = w.HTML()
        self.form_error.add_class("mlops-train-form-error")
        for field in (
            self.framework,
            self.main,
            self.files,
            self.folders,
            self.workers,
            self.devices,
            self.memory,
            self.volume,
            self.data_path,
            self.env,
            self.secret_names,
        ):
            field.observe(lambda _: self.update_actions(), "value")
        self.submit = Action("Submit", icon="play", css="mlops-train-submit", style="primary")
        self.submit.on_click(self.do_submit)

        self.pick = w.Select(rows=6, layout=grow(16, 60))
        self.pick.add_class("mlops-train-jobs")
        name_only(self.pick, "Training jobs")
        self.pick.observe(lambda _: self._show_job(), "value")
        self.details = w.HTML()
        self.log = w.HTML()
        self.log.add_class("mlops-train-log")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.stop = Action("Stop", icon="stop", css="mlops-train-stop")
        self.stop.on_click(self.do_stop)
        self.dependency = w.Text(
            description="Deployment", value=str(examples.DEPLOYMENT), style=LABEL, layout=grow()
        )
        self.entry_yml = w.Text(
            description="Entry YAML", value=str(examples.CONFIG), style=LABEL, layout=grow()
        )
        self.on_clash = w.Dropdown(
            description="Same names",
            style=LABEL,
            layout=grow(),
            options=[("add new assets beside them", "new"), ("replace them", "overwrite"), ("stop", "error")],
            value="new",
        )
        self.stage = Action("Stage this model", icon="upload", css="mlops-train-stage")
        self.stage.on_click(self.do_stage)
        self.message = w.HTML()
        self.message.add_class("mlops-train-message")
        self.widget = w.VBox(
            [
                section("Submit a training job", "template A1_Submit_WMLA_Training"),
                self.framework,
                self.main,
                self.files,
                self.folders,
                w.HBox([self.workers, self.devices, self.memory]),
                self.volume,
                self.data_path,
                self.env,
                self.secret_names,
                self.form_error,
                self.submit.widget,
                section("Jobs"),
                w.HBox([self.pick, self.refresh_button]),
                self.details,
                self.stop.widget,
                self.dependency,
                self.entry_yml,
                self.on_clash,
                self.stage.widget,
                self.message,
                self.log,
            ]
        )

    # -- the form ------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {}
        for line in _lines(self.env.value):
            key, sep, value = line.partition("=")
            if not sep or not key.strip().isidentifier():
                raise MlopsError(f"variable line {line!r} must be NAME=value")
            env[key.strip()] = value.strip()
        return env

    def _secrets(self) -> dict[str, str]:
        secrets = {}
        for name in [n.strip() for n in self.secret_names.value.split(",") if n.strip()]:
            value = from_environment(name)
            if value is None:
                raise MlopsError(f"secret variable {name} is not set in this kernel's environment")
            secrets[name] = value
        return secrets

    def params(self) -> dict[str, Any]:
        return {
            "framework": self.framework.value,
            "main_file": self.main.value.strip(),
            "files": _lines(self.files.value),
            "folders": _lines(self.folders.value),
            "workers": read_number(self.workers.value, integer=True, low=1, high=64),
            "devices_per_worker": read_number(self.devices.value, integer=True, low=0, high=16),
            "worker_memory": self.memory.value.strip(),
            "data_volume": self.volume.value.strip(),
            "data_path": self.data_path.value.strip(),
            "job_env": self._env(),
        }

    def _submitted_names(self) -> tuple[list[str], list[str]]:
        """(what the submission folder will hold, each a name relative to it; the files and
        folders that do not exist)."""
        import glob

        names, missing = [], []
        for line in _lines(self.files.value):
            matches = glob.glob(str(self._path(line)))
            if not matches:
                missing.append(line)
            names += [Path(m).name for m in matches]
        for line in _lines(self.folders.value):
            folder = self._path(line)
            if not folder.is_dir():
                missing.append(line)
                continue
            names += [f"{folder.name}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*.py")]
        return names, missing

    def _path(self, line: str) -> Path:
        path = Path(line).expanduser()
        return path if path.is_absolute() else self.ctx.base / path

    def problems(self) -> list[str]:
        """What keeps Submit disabled, each naming the field at fault."""
        found = []
        main = self.main.value.strip()
        names, missing = self._submitted_names()
        if not main:
            found.append("Main file: name the script to run")
        if not _lines(self.files.value) and not _lines(self.folders.value):
            found.append("Files: include at least one file or folder")
        for line in missing:
            found.append(
                f"{'Folders' if line in _lines(self.folders.value) else 'Files'}: {line} does not exist"
            )
        if main and not missing and main not in names:
            found.append(f"Main file: {main} is not among the files and folders")
        try:
            workers = read_number(self.workers.value, integer=True, low=1, high=64)
        except ValueError as exc:
            found.append(f"Training workers: {exc}")
            workers = 1
        try:
            read_number(self.devices.value, integer=True, low=0, high=16)
        except ValueError as exc:
            found.append(f"GPUs / worker: {exc}")
        if not re.fullmatch(r"\d+(\.\d+)?[kKmMgG]?", self.memory.value.strip()):
            found.append(f"Memory: {self.memory.value.strip()!r} is not a size such as 512m or 8g")
        volume = self.volume.value.strip()
        if volume and self.volumes is not None and volume not in self.volumes:
            known = ", ".join(self.volumes) or "none"
            found.append(f"Data volume: there is no storage volume {volume!r} (there are: {known})")
        if self.data_path.value.strip() and not volume:
            found.append("Data path: name the Data volume it is on")
        if workers > 1 and self.framework.value not in DISTRIBUTED:
            found.append(f"{self.framework.value} runs one worker: choose a distributed framework")
        try:
            self._env()
        except MlopsError as exc:
            found.append(exc.message)
        return found

    def update_actions(self) -> None:
        problems = self.problems()
        self.form_error.value = error_html(problems)
        self.submit.set_reason(
            self.ctx.busy_reason(SUBMIT_KEYS)
            or (f"fix the {len(problems)} problem(s) above" if problems else None)
        )
        job = self._job()
        busy = self.ctx.busy_reason(_job_keys(self.pick.value))
        self.stop.set_reason(
            busy or ("pick a running job" if job is None or job.state in JOB_ENDED else None)
        )
        self.stage.set_reason(
            self.ctx.busy_reason(_job_keys(self.pick.value) | {STAGING})
            or ("pick a finished job" if job is None or job.state != JOB_FINISHED else None)
        )

    def do_submit(self) -> None:
        # A credential typed among the variables goes to the run as a secret: the core moves it.
        params, secrets, base = self.params(), self._secrets(), self.ctx.base

        def done(record: Any) -> None:
            self.message.value = ok_html(f"training job {record.results.get('job_id')} submitted")

        self.ctx.run_action(  # through the core, as the CLI's train submit
            "Submit training job",
            lambda app, progress, cancel: app.train_submit(
                params, secrets=secrets, progress=progress, cancel=cancel, cwd=base
            ),
            on_done=done,
            on_error=lambda text: setattr(self.message, "value", error_html([text])),
            keys=SUBMIT_KEYS,
        )

    # -- the jobs ------------------------------------------------------------------------------

    def refresh(self) -> None:
        self.loaded = True
        try:
            self.volumes = self.ctx.app.volumes()
        except Exception:  # noqa: BLE001 - not checked then; Submit says what the backend answers
            self.volumes = None
        try:
            self.jobs = self.ctx.app.training_jobs()
        except MlopsError as exc:
            self.jobs = []
            self.details.value = error_html([error_text(exc)])
        options = [(f"{j.id}  {j.state}  {j.framework}", j.id) for j in self.jobs]
        set_options(self.pick, options, self.pick.value)
        self._show_job()

    def _job(self) -> JobView | None:
        return next((j for j in self.jobs if j.id == self.pick.value), None)

    def _show_job(self) -> None:
        job = self._job()
        self.update_actions()
        if job is None:
            self.details.value = self.log.value = ""
            return
        rows = [
            ("state", job.state),
            ("workers", f"{job.workers} x {job.devices_per_worker} GPU(s)"),
            ("created", local_time(job.created_at)),
            ("ended", local_time(job.ended_at) or "-"),
            ("output", job.output),
            ("error", job.error or ""),
        ]
        self.details.value = (
            "<table>"
            + "".join(
                f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(str(v))}</code></td></tr>"
                for k, v in rows
                if v
            )
            + "</table>"
        )
        try:
            lines = list(self.ctx.app.training_logs(job.id, tail=LOG_LINES))
        except MlopsError as exc:
            lines = [error_text(exc)]
        self.log.value = f"<pre>{html.escape(chr(10).join(lines))}</pre>"

    def do_stop(self) -> None:
        job_id = self.pick.value
        self.ctx.run_call(
            f"Stop training job {job_id}",
            lambda _progress: self.ctx.app.train_stop(job_id),
            on_error=lambda text: setattr(self.message, "value", error_html([text])),
            keys=_job_keys(job_id),
        )

    def do_stage(self) -> None:
        job_id = self.pick.value
        dependency, on_clash = self.dependency.value.strip(), self.on_clash.value

        def done(record: Any) -> None:
            self.last_model_asset_id = self.ctx.staged_asset_id = record.results.get("model_asset_id")
            self.message.value = ok_html(
                f"staged as model asset {self.last_model_asset_id} (see the Deploy tab)"
            )

        self.ctx.run_action(  # through the core, as the CLI's prepare stage --from-job
            f"Stage the output of {job_id}",
            lambda app, progress, cancel: app.stage_from_job(
                job_id, dependency, self._entry(), on_clash=on_clash, progress=progress, cancel=cancel
            ),
            on_done=done,
            on_error=lambda text: setattr(self.message, "value", error_html([text])),
            keys=_job_keys(job_id) | {STAGING},
        )

    def _entry(self) -> dict[str, Any]:
        """The one entry of the deployment metadata YAML named on the form (read in the step:
        a problem shows under the buttons as the stage's own would)."""
        from mlops_widgets.config import load_config

        (entry,) = load_config(
            self.entry_yml.value.strip(), with_key=False, definitions=self.ctx.definitions
        ).entries.values()
        return dict(entry)
