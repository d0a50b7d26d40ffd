"""The Deploy tab: pick a staged model, name the deployment, set custom args; deploy, start,
stop, delete, and see each deployment's state.

Custom args marked secret are typed into a masked field and handed to the runner as secrets:
they reach the kernel through its environment, never a notebook, a record or the metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from mlops_widgets.config.problems import Problem
from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._dialog import ConfirmDialog
from mlops_widgets.widgets._forms import (
    Action,
    FieldErrors,
    error_html,
    ok_html,
    pending,
    problem_text,
    section,
    set_options,
)
from mlops_widgets.widgets._hints import CONTROLS
from mlops_widgets.widgets._style import LABEL, fit, grow, name_only
from mlops_widgets.widgets._table import Table, column
from mlops_widgets.widgets._task import deployment_key, entry_key, error_text
from mlops_widgets.widgets.deploy_tools import DeploymentTools

if TYPE_CHECKING:
    from mlops_widgets.app import DeploymentRow

STYLE = LABEL
NAME_PATH = "wmla_deployment.deployment_name"
# Colours of a deployment's state and its service's status in the table.
STATE_TONES = {"started": "ok", "stopped": "warn", "deploying": "warn", "absent": "error"}
STATUS_TONES = {
    "IDLE": "ok",
    "BUSY": "ok",
    "STOPPED": "warn",
    "FAILED": "error",
    "NOT DEPLOYED": "error",
    "SERVICE_DOWN": "error",
}
COLUMNS = [
    column("name", "Name"),
    column("state", "State", tones=STATE_TONES),
    column("status", "Status", tones=STATUS_TONES),
    column("workers", "Workers", optional=True),
    column("url", "Address"),
]
PROBLEM = column("problem", "Problem")


class CustomArg:
    """One key/value row; the value widget is a Password while the row is secret."""

    def __init__(self, tab: DeployTab, key: str = "", value: str = "", secret: bool = False) -> None:
        from mlops_widgets.secret_names import is_secret_name

        self.tab = tab
        secret = secret or is_secret_name(key)
        self.key = w.Text(value=key, placeholder="NAME", layout=grow())
        self.key.add_class("mlops-arg-key")
        name_only(self.key, "Argument name")
        self.plain = w.Text(value=value, placeholder="value", layout=grow())
        self.plain.add_class("mlops-arg-value")
        name_only(self.plain, "Argument value")
        self.masked = w.Password(value=value, placeholder="secret value", layout=grow())
        self.masked.add_class("mlops-arg-secret")
        name_only(self.masked, "Secret argument value")
        self.secret = w.Checkbox(value=secret, description="secret", indent=False, layout=fit())
        self.remove = w.Button(icon="times", tooltip="remove this argument", layout=fit())
        self.error = w.HTML()
        self.widget = w.HBox(
            [self.key, self.masked if secret else self.plain, self.secret, self.remove, self.error]
        )
        self.secret.observe(self._toggle, "value")
        self.key.observe(self._key_changed, "value")
        for widget in (self.plain, self.masked):
            widget.observe(lambda _: tab.validate(), "value")
        self.remove.on_click(lambda _: tab.remove_arg(self))

    @property
    def value(self) -> str:
        return self.masked.value if self.secret.value else self.plain.value

    def _toggle(self, change: dict) -> None:
        # Carry the value across so toggling never loses what was typed.
        if change["new"]:
            self.masked.value, self.plain.value = self.plain.value, ""
            self.widget.children = [self.key, self.masked, *self.widget.children[2:]]
        else:
            self.plain.value, self.masked.value = self.masked.value, ""
            self.widget.children = [self.key, self.plain, *self.widget.children[2:]]
        self.tab.validate()

    def _key_changed(self, change: dict) -> None:
        from mlops_widgets.secret_names import is_secret_name

        if is_secret_name(change["new"] or "") and not self.secret.value:
            self.secret.value = True  # a key that looks secret is one for the runner anyway
        self.tab.validate()


class DeployTab:
    """Create deployments from staged entries and drive their life cycle."""

    title = "Deploy"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.loaded = False
        self.errors = FieldErrors()
        self.entries: dict[str, dict[str, Any]] = {}
        self.deployments: list[DeploymentRow] = []
        self.problems: list[str] = []
        # Secret custom args typed here, by deployment: Start hands them to a restarted service.
        self._secrets: dict[str, dict[str, str]] = {}
        # A conflict with what exists (name taken, asset deployed): why Deploy waits, not an error.
        self.conflict: str | None = None

        self.asset = w.Dropdown(description="Staged model", options=[], style=STYLE, layout=grow())
        self.asset.add_class("mlops-deploy-asset")
        self.name = w.Text(
            description="Deployment name", placeholder="lower-case, digits and -", style=STYLE, layout=grow()
        )
        self.name.add_class("mlops-deploy-name")
        self.kernel = w.Text(
            description=CONTROLS["kernel_filename"],
            value="kernel.py",
            tooltip="kernel_filename: the Python file each inference worker runs",
            style=STYLE,
            layout=grow(),
        )
        self.kernel.add_class("mlops-deploy-kernel")
        self.args: list[CustomArg] = []
        self.args_box = w.VBox()
        self.add_arg_button = w.Button(description="Add custom arg", icon="plus")
        self.add_arg_button.on_click(lambda _: self.add_arg())
        self.deploy = Action("Deploy", icon="rocket", css="mlops-deploy", style="primary")
        self.deploy.on_click(self.start_deploy)
        self.general = w.HTML()
        self.result = w.HTML()
        self.result.add_class("mlops-deploy-result")
        for widget in (self.asset, self.name, self.kernel):
            widget.observe(lambda _: self.validate(), "value")

        # The deployments, one picked: what Start, Stop, Delete and the tools below act on.
        self.target = Table(COLUMNS, label="Deployments", empty="no deployments yet", sort_by="name")
        self.target.add_class("mlops-deploy-target")
        self.target.add_class("mlops-deployments")
        self.target.observe(lambda _: self.update_actions(), "value")
        ctx.share_selection(self.target)
        self.start = Action("Start", icon="play", css="mlops-start")
        self.stop = Action("Stop", icon="stop", css="mlops-stop")
        self.delete = Action("Delete", icon="trash", css="mlops-delete", style="danger")
        self.remove_monitor = w.Checkbox(description="also remove its monitors", indent=False)
        self.remove_config = w.Checkbox(description="also remove its entry", indent=False)
        self.start.on_click(lambda: self._life("start"))
        self.stop.on_click(lambda: self._life("stop"))
        self.confirm = ConfirmDialog()
        self.tools = DeploymentTools(ctx, self.target, self.state)
        self.delete.on_click(self._ask_delete)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.message = w.HTML()
        self.message.add_class("mlops-deploy-message")

        self.widget = w.VBox(
            [
                section("New deployment"),
                w.HBox([self.asset, self.errors.label("model_asset_id", self.asset)]),
                w.HBox([self.name, self.errors.label(NAME_PATH, self.name)]),
                w.HBox([self.kernel, self.errors.label("kernel_filename", self.kernel)]),
                w.HTML(
                    "<b>Custom args</b> <span class='mlops-muted'>(module-level names in the worker script; "
                    "secret values go only to the inference workers' environment)</span>"
                ),
                self.args_box,
                self.add_arg_button,
                self.general,
                self.deploy.widget,
                self.result,
                section("Deployments"),
                self.target,
                w.HBox([self.start.widget, self.stop.widget, self.refresh_button]),
                w.HBox([self.delete.widget, self.remove_monitor, self.remove_config]),
                self.message,
                self.tools.widget,
            ]
        )
        self.widget.add_class("mlops-deploy-tab")
        self.validate()

    # -- custom args ----------------------------------------------------------------------------

    def add_arg(self, key: str = "", value: str = "", secret: bool = False) -> CustomArg:
        row = CustomArg(self, key, value, secret)
        self.args.append(row)
        self.args_box.children = [r.widget for r in self.args]
        self.validate()
        return row

    def remove_arg(self, row: CustomArg) -> None:
        self.args.remove(row)
        self.args_box.children = [r.widget for r in self.args]
        self.validate()

    def custom_args(self) -> tuple[dict[str, str], dict[str, str]]:
        """(plain args, secret args) by key."""
        plain: dict[str, str] = {}
        secret: dict[str, str] = {}
        for row in self.args:
            key = row.key.value.strip()
            if key:
                (secret if row.secret.value else plain)[key] = row.value
        return plain, secret

    # -- lists ----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the staged entries and the deployments with their states."""
        self.loaded = True
        try:
            self.entries = self.ctx.app.entries()
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.entries = {}
            self.message.value = error_html([f"cannot read the entries: {error_text(exc)}"])
        options = []
        for asset_id, entry in self.entries.items():
            wmla = entry.get("wmla_deployment") or {}
            deployed = wmla.get("deployment_name")
            label = f"{entry.get('model_name') or '?'} · {entry.get('model_asset') or '?'} · {asset_id}"
            options.append(((f"[{deployed}] " if deployed else "") + label, asset_id))
        # The model just staged, else the one picked before, else the newest entry.
        set_options(self.asset, options, self.ctx.staged_asset_id or self.asset.value, last=True)
        self.ctx.staged_asset_id = None
        self._refresh_deployments()
        self.validate()

    def _refresh_deployments(self) -> None:
        try:
            self.deployments = self.ctx.app.deployments()
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.deployments = []
            self.message.value = error_html([f"cannot list the deployments: {error_text(exc)}"])
        # What went wrong with one, in a column of its own only when one has a problem.
        problems = any(d.error for d in self.deployments)
        self.target.columns = [*COLUMNS, PROBLEM] if problems else COLUMNS
        self.target.show([_row(d) for d in self.deployments], self.ctx.deployment or self.target.value)

    # -- validation -----------------------------------------------------------------------------

    def validate(self) -> bool:
        problems: list[Any] = []
        asset_id = self.asset.value
        name = self.name.value.strip()
        if not asset_id:
            problems.append(Problem("model_asset_id", "stage a model first (Prepare tab), then pick it here"))
        if not name:
            problems.append(Problem(NAME_PATH, "give the deployment a name"))
        else:
            problems.extend(self._name_problems(asset_id, name))
        if not self.kernel.value.strip():
            problems.append(Problem("kernel_filename", "give the kernel file's name (e.g. kernel.py)"))
        seen: set[str] = set()
        for row in self.args:
            key = row.key.value.strip()
            msg = None
            if not key:
                msg = "give the argument a name"
            elif not key.isidentifier():
                msg = f"{key!r} is not a Python name (the kernel reads it as a module-level name)"
            elif key in seen:
                msg = f"{key} is given twice"
            seen.add(key)
            row.error.value = error_html([msg] if msg else [])
            if msg:
                problems.append(Problem("custom_args", msg))
        self.conflict = None
        if name and not problems:
            self.conflict = self._conflict(asset_id, name)
        rest = self.errors.show(problems)
        self.general.value = error_html(problem_text(p) for p in rest if p.path != "custom_args")
        self.problems = [problem_text(p) for p in problems]
        self.update_actions()
        return not problems

    def _name_problems(self, asset_id: str | None, name: str) -> list[Any]:
        """The name rule of the config model (beside the field), then the CLI's own checks
        before a deploy (`App.deploy_check`: name free, asset staged and not deployed)."""
        from mlops_widgets.config import ConfigError, validate_entry

        entry = self.entries.get(asset_id or "")
        if entry is None:
            return []
        trial = {
            **entry,
            "wmla_deployment": {**(entry.get("wmla_deployment") or {}), "deployment_name": name},
        }
        try:
            validate_entry(trial, definitions=self.ctx.definitions)
        except ConfigError as exc:
            named = [p for p in exc.errors if p.path.startswith(NAME_PATH)]
            if named:
                return named
        return []

    def _conflict(self, asset_id: str | None, name: str) -> str | None:
        """The checks before a deploy against what exists now (`App.deploy_check`:
        name free, asset staged and not deployed): why Deploy waits, said beside it. Not an
        error: right after a deploy the form describes what now exists."""
        if not asset_id or asset_id not in self.entries:
            return None
        try:
            self.ctx.app.deploy_check(name, asset_id)
        except Exception as exc:  # noqa: BLE001 - the refusal, shown beside Deploy
            return error_text(exc)
        return None

    def deploy_keys(self) -> set[str]:
        """What Deploy works on: the deployment it makes and the entry it deploys."""
        return {deployment_key(self.name.value.strip()), entry_key(str(self.asset.value or ""))}

    def update_actions(self) -> None:
        invalid = pending(self.problems, self.errors)
        self.deploy.set_reason(self.ctx.busy_reason(self.deploy_keys()) or invalid or self.conflict)
        pick = None if self.target.value else "pick a deployment"
        busy = self.ctx.busy_reason({deployment_key(self.target.value or "")})
        state = self.state()
        self.start.set_reason(
            busy
            or pick
            or ("it is running" if state == "started" else None)
            or ("it is not deployed" if state == "absent" else None)
        )
        self.stop.set_reason(busy or pick or (None if state == "started" else "it is not running"))
        self.delete.set_reason(busy or pick)
        self.tools.update_actions()

    def state(self) -> str | None:
        """The picked deployment's state (`started`, `stopped`, `absent`), None when unknown."""
        return next((d.state for d in self.deployments if d.name == self.target.value), None)

    # -- actions --------------------------------------------------------------------------------

    def deploy_params(self) -> tuple[dict[str, Any], dict[str, str]]:
        """A2's parameters and the secret custom args, which travel as the run's secrets (the
        template hands them to the kernel: they never enter the notebook or the record)."""
        plain, secret = self.custom_args()
        params = {
            "deployment_name": self.name.value.strip(),
            "model_asset_id": self.asset.value,
            "kernel_filename": self.kernel.value.strip(),
            "custom_args": plain,
        }
        return params, secret

    def start_deploy(self) -> None:
        keys = self.deploy_keys()
        if not self.validate() or self.ctx.busy_reason(keys):
            return
        params, secrets = self.deploy_params()
        name = params["deployment_name"]
        self.result.value = ""

        def done(run: Any) -> None:
            self._secrets[name] = secrets  # for Start after the service restarted
            self.result.value = ok_html(f"deployed {name}: {run.results.get('deployment_url') or ''}")
            self.ctx.deployment = name  # every tab shows the new deployment
            # A fresh form for the next deployment: this one now exists (no "already deployed").
            self.name.value = ""
            self.errors.label(NAME_PATH, self.name)

        self.ctx.run_action(  # through the core: validated and recorded as the CLI's deploy create
            f"Deploy {name}",
            lambda app, progress, cancel: app.deploy_create(
                name,
                params["model_asset_id"],
                kernel_filename=params["kernel_filename"] or None,
                custom_args=params["custom_args"],
                secret_args=secrets,
                progress=progress,
                cancel=cancel,
            ),
            on_done=done,
            keys=keys,
        )

    def _ask_delete(self) -> None:
        name = self.target.value
        if not name:
            return
        plan = self.ctx.app.deployment_delete_plan(name)
        effects = plan.effects(
            remove_monitor=bool(self.remove_monitor.value), remove_config=bool(self.remove_config.value)
        )
        self.confirm.ask(
            f"Delete deployment {name}?",
            ("" if plan.deployed else f"{name} is not deployed. ") + "This cannot be undone.",
            "Delete",
            lambda: self._life("delete"),
            items=[e[0].upper() + e[1:] for e in effects[1:]],
        )

    def _life(self, action: str) -> None:
        name = self.target.value
        if not name or self.ctx.busy_reason({deployment_key(name)}):
            return
        self.ctx.deployment = name
        self.message.value = ""
        ctx = self.ctx  # ctx.backend is read in the step's thread: it is per thread
        remove_monitor, remove_config = bool(self.remove_monitor.value), bool(self.remove_config.value)
        calls = {  # through the core: validated and recorded as the CLI's are
            "start": lambda progress: ctx.app.deploy_start(
                name, progress=progress, secret_args=self._secrets.get(name)
            ),
            "stop": lambda progress: ctx.app.deploy_stop(name),
            "delete": lambda progress: ctx.app.deploy_delete(
                name, remove_monitor=remove_monitor, remove_config=remove_config
            ),
        }
        past = {"start": "started", "stop": "stopped", "delete": "deleted"}[action]
        self.ctx.run_call(
            f"{action.capitalize()} {name}",
            calls[action],
            on_done=lambda _: setattr(self.message, "value", ok_html(f"{name} {past}")),
            keys={deployment_key(name)},
        )


def _row(d: DeploymentRow) -> dict[str, Any]:
    """A deployment as the table's row (its name is its id)."""
    return {
        "id": d.name,
        "name": d.name,
        "state": d.state,
        "status": d.status or "?",
        "workers": d.kernels,
        "url": d.url or "",
        "problem": d.error or "",
    }
