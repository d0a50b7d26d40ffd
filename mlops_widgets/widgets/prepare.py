"""The Prepare tab: the deployment-metadata entry as a form, YAML in and out, and Stage.

The form builds the same entry dict the YAML holds and validates it with the config model on
every change, so the panel shows exactly the problems `mlops config validate` prints.
"""

from __future__ import annotations

import copy
import html
from typing import Any

import ipywidgets as w

from mlops_widgets.config.problems import Problem, join_path
from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._dialog import ConfirmDialog
from mlops_widgets.widgets._files import PathField, display_path
from mlops_widgets.widgets._forms import (
    WARN,
    Action,
    FieldErrors,
    error_html,
    number_text,
    ok_html,
    pending,
    problem_text,
    read_number,
    section,
)
from mlops_widgets.widgets._hints import CONTROLS
from mlops_widgets.widgets._style import LABEL, SHORT_LABEL, grow
from mlops_widgets.widgets._task import STAGING, error_text
from mlops_widgets.widgets.entry_edit import EntryEditor
from mlops_widgets.widgets.prepare_monitors import PROVIDERS, MonitorForm, plain

RESOURCES = "wmla_deployment.resource_configs"

# resource_configs key -> (help, integer?); the label is the control's name (_hints.CONTROLS),
# the key its tooltip; enable_gpus is a checkbox.
RESOURCE_FIELDS: dict[str, tuple[str, bool]] = {
    "n_cpus": ("CPUs per inference worker", False),
    "memory_allocation": ("memory per inference worker, MB", False),
    "kernel_min": ("inference workers kept running (0: none until a request)", True),
    "kernel_max": ("most inference workers under load", True),
    "kernel_delay_release_time": ("an idle surplus inference worker stops after this", True),
    "task_execution_timeout": ("a request fails after this; -1: no limit", True),
    "task_batch_size": ("requests handed to an inference worker at once", True),
}
# What the form starts with where the config model has no default (the original's example).
FORM_DEFAULTS: dict[str, Any] = {"n_cpus": 1, "memory_allocation": 1024}
ON_CLASH = [
    ("refuse: stop and say so", "error"),
    ("replace the old assets", "overwrite"),
    ("add new assets of the same name", "new"),
]
STYLE = LABEL


class PrepareTab:
    """Model and dependency paths, model name, resources, monitors; load/save YAML; Stage."""

    title = "Prepare"

    def __init__(self, ctx: PanelContext) -> None:
        from mlops_widgets.config import RESOURCE_DEFAULTS

        self.ctx = ctx
        self.loaded = True  # nothing to load: the form is its own state
        self.errors = FieldErrors()
        self._base: dict[str, Any] | None = None  # the loaded entry: keys the form has no input for
        self._loaded_entries: dict[str, dict[str, Any]] = {}
        self._quiet = False
        self.valid = False
        self.problems: list[str] = []
        self.last_model_asset_id: str | None = None
        self.last_run: Any = None
        self.editor = EntryEditor(self)

        self.yaml_path = PathField(
            "Config YAML", base=ctx.base, css="mlops-yaml-path", placeholder="deployment_metadata.yml"
        )
        self.load = Action("Load", icon="folder-open", css="mlops-load")
        self.save = Action("Save", icon="save", css="mlops-save")
        self.load.on_click(self.load_yaml)
        self.example = Action("Load example", icon="flask", css="mlops-load-example")
        self.example.on_click(self.load_example)
        self.save.on_click(self.save_yaml)
        self.yaml_path.text.observe(lambda _: self.update_actions(), "value")
        self.entry_pick = w.Dropdown(
            description="Entry", style=STYLE, layout=w.Layout(width="auto", max_width="48em", display="none")
        )
        self.entry_pick.observe(self._entry_picked, "value")
        self.yaml_message = w.HTML()
        self.yaml_message.add_class("mlops-yaml-message")

        self.path_model = PathField(
            "Model file/folder",
            base=ctx.base,
            css="mlops-path-model",
            placeholder="model file or folder (a path, or pick one)",
            on_change=self.validate,
        )
        self.path_dependency = PathField(
            "Deployment folder",
            base=ctx.base,
            css="mlops-path-dependency",
            placeholder="kernel file, README.md, other dependencies",
            on_change=self.validate,
        )
        self.model_name = w.Text(
            description="Model name", style=STYLE, layout=grow(), placeholder="free text (optional)"
        )
        self.model_name.add_class("mlops-model-name")
        self.model_name.observe(lambda _: self.validate(), "value")

        self.enable_gpus = w.Checkbox(
            description=CONTROLS["enable_gpus"],
            tooltip="enable_gpus: one GPU per inference worker",
            style=STYLE,
            value=bool(RESOURCE_DEFAULTS["enable_gpus"]),
        )
        self.enable_gpus.add_class("mlops-res-enable_gpus")
        self.enable_gpus.observe(lambda _: self.validate(), "value")
        self.resources: dict[str, w.Text] = {}
        resource_rows = [
            w.HBox([self.enable_gpus, self.errors.label(f"{RESOURCES}.enable_gpus", self.enable_gpus)])
        ]
        for key, (tip, _integer) in RESOURCE_FIELDS.items():
            field = number_text(
                CONTROLS[key],
                plain({**RESOURCE_DEFAULTS, **FORM_DEFAULTS}[key]),
                css=f"mlops-res-{key}",
                style=STYLE,
                tooltip=key,
            )
            field.observe(lambda _: self.validate(), "value")
            self.resources[key] = field
            resource_rows.append(
                w.HBox(
                    [
                        field,
                        w.HTML(f"<span class='mlops-muted'>{html.escape(tip)}</span>"),
                        self.errors.label(f"{RESOURCES}.{key}", field),
                    ]
                )
            )

        self.monitor_pick = w.Combobox(
            options=sorted(ctx.definitions),
            placeholder="monitor id",
            ensure_option=False,
            description="Monitor",
            style=SHORT_LABEL,
            layout=grow(),
        )
        self.monitor_pick.add_class("mlops-monitor-pick")
        self.add_monitor_action = Action("Add monitor", icon="plus", css="mlops-add-monitor")
        self.add_monitor_button = self.add_monitor_action.button
        self.add_monitor_action.on_click(lambda: self.add_monitor(self.monitor_pick.value.strip()))
        self.monitor_pick.observe(lambda _: self._monitor_pick_changed(), "value")
        self.monitor_message = w.HTML()
        self.confirm = ConfirmDialog()
        self.monitors: dict[str, MonitorForm] = {}
        # One fold per monitor (MonitorForm.section): an 18-metric grid would push Stage off screen.
        self.monitor_box = w.VBox()
        self.monitor_box.add_class("mlops-monitors")

        self.on_clash = w.Dropdown(
            options=ON_CLASH, value="error", description="Same names", style=STYLE, layout=grow()
        )
        self.stage = Action("Stage", icon="upload", css="mlops-stage", style="primary")
        self.stage.on_click(self.start_stage)
        self.general = w.HTML()
        self.general.add_class("mlops-prepare-errors")
        self.result = w.HTML()
        self.result.add_class("mlops-stage-result")

        self.widget = w.VBox(
            [
                section("Deployment metadata (YAML)"),
                w.HBox([self.yaml_path.widget, self.load.widget, self.save.widget, self.example.widget]),
                self.entry_pick,
                self.yaml_message,
                section("Files"),
                w.HBox([self.path_model.widget, self.errors.label("path_model", self.path_model.text)]),
                w.HBox(
                    [
                        self.path_dependency.widget,
                        self.errors.label("path_dependency", self.path_dependency.text),
                    ]
                ),
                w.HBox([self.model_name, self.errors.label("model_name", self.model_name)]),
                section("Resources"),
                *resource_rows,
                section("Monitors"),
                w.HBox([self.monitor_pick, self.add_monitor_action.widget]),
                self.monitor_message,
                self.errors.label(PROVIDERS),
                self.monitor_box,
                section("Stage"),
                self.on_clash,
                self.general,
                self.stage.widget,
                self.result,
                self.editor.widget,
            ]
        )
        self.widget.add_class("mlops-prepare")
        self.validate()

    # -- the entry ------------------------------------------------------------------------------

    def entry(self) -> dict[str, Any]:
        """The entry the form describes, in the original YAML shape."""
        from mlops_widgets.config import new_entry

        entry = copy.deepcopy(self._base) if self._base is not None else new_entry()
        entry["model_name"] = self.model_name.value.strip() or None
        wmla = entry.get("wmla_deployment")
        if not isinstance(wmla, dict):
            wmla = entry["wmla_deployment"] = {}
        resources: dict[str, Any] = {"enable_gpus": bool(self.enable_gpus.value)}
        for key, field in self.resources.items():
            try:
                resources[key] = plain(read_number(field.value))
            except ValueError:
                pass  # said beside the field (input_problems); the entry keeps it out
        wmla["resource_configs"] = resources
        entry[PROVIDERS] = {mid: form.to_config() for mid, form in self.monitors.items()}
        return entry

    def set_entry(self, entry: dict[str, Any]) -> None:
        """Fill the form from an entry (validated and normalized by the config model)."""
        from mlops_widgets.config import RESOURCE_DEFAULTS

        self._quiet = True  # one validation at the end, not one per field
        try:
            self._base = copy.deepcopy(entry)
            self.model_name.value = str(entry.get("model_name") or "")
            resources = (entry.get("wmla_deployment") or {}).get("resource_configs") or {}
            defaults = {**RESOURCE_DEFAULTS, **FORM_DEFAULTS}
            self.enable_gpus.value = bool(resources.get("enable_gpus", defaults["enable_gpus"]))
            for key, field in self.resources.items():
                value = resources.get(key, defaults[key])
                field.value = str(plain(value if isinstance(value, int | float) else defaults[key]))
            for mid in list(self.monitors):
                self.remove_monitor(mid)
            for mid, settings in (entry.get(PROVIDERS) or {}).items():
                self.add_monitor(mid, settings)
        finally:
            self._quiet = False
        self.validate()

    def add_monitor(self, monitor_id: str, settings: dict[str, Any] | None = None) -> None:
        """Add a monitor, with its definition's default thresholds unless settings are given."""
        from mlops_widgets.config import new_monitor_settings

        if not monitor_id:
            self.monitor_message.value = error_html(["type or pick a monitor id first"])
            return
        if monitor_id in self.monitors:
            self.monitor_message.value = error_html([f"{monitor_id} is already in the entry"])
            return
        self.monitor_message.value = ""
        if settings is None:
            settings = new_monitor_settings(monitor_id, self.ctx.definitions)
        self.monitors[monitor_id] = MonitorForm(self, monitor_id, settings)
        self._show_monitors()
        self.monitor_pick.value = ""
        self.validate()

    def _monitor_pick_changed(self) -> None:
        """Add monitor is offered only for a monitor id not yet in the entry."""
        monitor_id = self.monitor_pick.value.strip()
        self.add_monitor_action.set_reason(
            "type or pick a monitor id under Monitor"
            if not monitor_id
            else (f"{monitor_id} is already in the entry" if monitor_id in self.monitors else None)
        )

    def remove_monitor(self, monitor_id: str) -> None:
        self.monitors.pop(monitor_id, None)
        self.errors.forget(join_path(PROVIDERS, monitor_id))
        self._show_monitors()
        self.validate()

    def _show_monitors(self) -> None:
        self.monitor_box.children = [f.section for f in self.monitors.values()]

    def _open_monitor_with_problems(self, problems: list[Problem]) -> None:
        """Unfold the first monitor with a problem when all are folded, so its errors show."""
        if any(form.open for form in self.monitors.values()):
            return
        for form in self.monitors.values():
            if any(
                p.path == form.path or p.path.startswith((form.path + ".", form.path + "[")) for p in problems
            ):
                form.header.value = True
                return

    # -- validation -----------------------------------------------------------------------------

    def _path_problems(self) -> list[Problem]:
        out = []
        for key, field, what in (
            ("path_model", self.path_model, "the model file or folder"),
            ("path_dependency", self.path_dependency, "the deployment folder"),
        ):
            p = field.resolved()
            if p is None:
                out.append(Problem(key, f"choose {what}"))
            elif not p.exists():
                out.append(Problem(key, f"{field.value} does not exist"))
        return out

    def _input_problems(self) -> list[Problem]:
        """Number fields whose text is no number (the entry leaves them out, so the config
        model would not see them)."""
        out = []
        for key, field in self.resources.items():
            try:
                read_number(field.value)
            except ValueError as exc:
                out.append(Problem(f"{RESOURCES}.{key}", str(exc)))
        for form in self.monitors.values():
            out.extend(form.input_problems())
        return out

    def validate(self) -> bool:
        """Check the form with the config model; show every problem beside its field."""
        if self._quiet:
            return self.valid
        from mlops_widgets.config import ConfigError, validate_entry

        problems: list[Problem] = self._path_problems() + self._input_problems()
        warnings: list[Problem] = []
        try:
            _, warnings = validate_entry(self.entry(), definitions=self.ctx.definitions)
        except ConfigError as exc:
            problems.extend(exc.errors)
            warnings = exc.warnings
        rest = self.errors.show(problems)
        self._open_monitor_with_problems(problems)
        self.general.value = error_html(problem_text(p) for p in rest) + error_html(
            (problem_text(p) for p in warnings), WARN
        )
        self.problems = [problem_text(p) for p in problems]
        self.valid = not problems
        self.update_actions()
        return self.valid

    def update_actions(self) -> None:
        invalid = pending(self.problems, self.errors)
        self.stage.set_reason(self.ctx.busy_reason({STAGING}) or invalid)
        # Saving needs a valid entry but not the files: a config may be written before staging.
        entry_problems = [p for p in self.problems if not p.startswith(("path_model", "path_dependency"))]
        if not self.yaml_path.value:
            self.save.set_reason("give the YAML path to save to")
        else:
            self.save.set_reason(pending(entry_problems, self.errors))
        self.load.set_reason(None if self.yaml_path.value else "give the YAML path to load")
        self.editor.update_actions()
        self._monitor_pick_changed()

    # -- YAML -----------------------------------------------------------------------------------

    def load_example(self) -> None:
        """The bundled example (a small segmentation model, its deployment folder and its
        config): a first run needs no files of one's own."""
        from mlops_widgets import examples

        self.yaml_path.value = str(examples.CONFIG)
        self.load_yaml()
        self.path_model.value = str(examples.MODEL)
        self.path_dependency.value = str(examples.DEPLOYMENT)

    def load_yaml(self) -> None:
        """Read the YAML (one entry, or model asset id -> entry) with the config model; on
        problems show each with its line and keep the form as it was."""
        from mlops_widgets.config import ConfigError, load_config

        path = self.yaml_path.resolved()
        if path is None:
            return
        loaded = None
        try:
            try:
                loaded = load_config(path, definitions=self.ctx.definitions)
            except ConfigError as single:
                try:
                    loaded = load_config(path, with_key=True, definitions=self.ctx.definitions)
                except ConfigError:
                    raise single from None
        except ConfigError as exc:
            self.yaml_message.value = error_html(
                [f"{self.yaml_path.value} is not a valid deployment metadata file:"]
                + [p.format() for p in exc.problems],
                keys=True,
            )
            return
        except Exception as exc:  # noqa: BLE001 - shown inline, never a traceback
            self.yaml_message.value = error_html([f"cannot read {self.yaml_path.value}: {error_text(exc)}"])
            return
        notes = error_html((p.format() for p in loaded.warnings), WARN, keys=True)
        self._loaded_entries = {str(k): v for k, v in loaded.entries.items()}
        if len(loaded.entries) > 1:
            self.entry_pick.options = [
                (f"{v.get('model_name') or '?'} ({k})", str(k)) for k, v in loaded.entries.items()
            ]
            self.entry_pick.layout.display = ""
            self.yaml_message.value = (
                ok_html(f"loaded {self.yaml_path.value}: {len(loaded.entries)} entries, pick one") + notes
            )
        else:
            self.entry_pick.layout.display = "none"
            (entry,) = loaded.entries.values()
            self.set_entry(entry)
            self.yaml_message.value = ok_html(f"loaded {self.yaml_path.value}") + notes

    def _entry_picked(self, change: dict) -> None:
        if change["new"] in self._loaded_entries:
            self.set_entry(self._loaded_entries[change["new"]])

    def save_yaml(self) -> None:
        """Write the entry in the original single-entry format."""
        from mlops_widgets.config import dump_yaml
        from mlops_widgets.workspace import atomic_write, inside

        path = self.yaml_path.resolved()
        if path is None or self.save.disabled:
            return
        try:
            path = inside(self.ctx.root, path, "YAML file's path")
            atomic_write(path, dump_yaml(self.entry()))
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.yaml_message.value = error_html([f"cannot save {self.yaml_path.value}: {error_text(exc)}"])
            return
        self.yaml_message.value = ok_html(f"saved {display_path(path, self.ctx.base)}")

    # -- Stage ----------------------------------------------------------------------------------

    def start_stage(self) -> None:
        if not self.validate() or self.ctx.busy_reason({STAGING}):
            return
        self.result.value = ""
        model, dependency = self.path_model.resolved(), self.path_dependency.resolved()
        assert model is not None and dependency is not None
        entry, on_clash = self.entry(), self.on_clash.value
        self.ctx.run_action(  # through the core, as the CLI's prepare stage
            "Stage",
            lambda app, progress, cancel: app.stage(
                model, dependency, entry, on_clash=on_clash, progress=progress, cancel=cancel
            ),
            on_done=self._staged,
            keys={STAGING},
        )

    def _staged(self, run: Any) -> None:
        self.last_run = run
        self.last_model_asset_id = (run.results or {}).get("model_asset_id")
        self.ctx.staged_asset_id = self.last_model_asset_id
        self.result.value = (
            "<div class='mlops-ok'>staged: model asset id <code class='mlops-model-asset-id'>"
            f"{html.escape(str(self.last_model_asset_id))}</code></div>"
        )

    def refresh(self) -> None:
        """The staged entries one can edit (the form's own state is the user's input)."""
        self.editor.refresh()
