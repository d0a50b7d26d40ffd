"""Every setting of mlops-widgets, declared once: name, type, default, environment variable, help.

Two scopes:
- process settings (the workspace folder, the backend, service bounds, cluster timeouts...) are
  read from the environment of the process that uses them, else their default;
- workspace settings (the minimum schedule interval) govern what is stored in a workspace, so
  every process acting on it (the CLI, the panel's kernel, the local service's scheduler) must
  agree: they are read from the workspace's database. Setting the environment variable in a
  process that reads one stores the value in the workspace (`mlops settings set` does it
  explicitly), so a service started without the variable still follows it.

A small registry of our own rather than pydantic-settings: the base install has no pydantic, the
values are a few scalars, and the kernels and the service read them in hot paths without a model.
Variables that carry one run's hand-off to its kernel (MLOPS_RUN_ID, MLOPS_RUN_RESULTS,
MLOPS_KERNEL_FD, MLOPS_KERNEL_CREDENTIALS, MLOPS_SECRET_<name>) or a training job's to its workers
(MLOPS_METRICS_FILE) are not settings: the runner and the job's supervisor set them. The original's helpers (edi_helpers/) run inside deployed kernels without this package and
read MLOPS_BACKEND, MLOPS_HOME, MLOPS_VOLUMES and MLOPS_CPD_CA_BUNDLE from the environment the
submission gives them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlops_widgets.errors import MlopsError

if TYPE_CHECKING:  # the workspace reads its folder's setting from here
    from mlops_widgets.workspace import Workspace

Scope = Literal["process", "workspace"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);"


def _positive(kind: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw)
        if value <= 0:
            raise ValueError(what)
        return value

    parse.what = what  # type: ignore[attr-defined]
    return parse


def _text(raw: str) -> str:
    return raw


_text.what = "text"  # type: ignore[attr-defined]


def _flag(raw: str) -> bool:
    if raw not in ("0", "1"):
        raise ValueError("0 or 1")
    return raw == "1"


_flag.what = "0 or 1"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Setting:
    """One setting; `parse` turns the environment's text into the value (ValueError when bad)."""

    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    scope: Scope = "process"

    def from_env(self, environ: Mapping[str, str] | None = None) -> Any:
        """The environment's value (empty counts as unset), else the default."""
        raw = (os.environ if environ is None else environ).get(self.env, "").strip()
        return self.default if not raw else self.value_of(raw, f"the environment variable {self.env}")

    def value_of(self, raw: str, where: str) -> Any:
        """`raw` parsed, or one error naming where it came from and what is expected."""
        try:
            return self.parse(raw)
        except ValueError:
            what = getattr(self.parse, "what", "a valid value")
            raise MlopsError(f"{where} must be {what}, got {raw!r}") from None


SETTINGS: dict[str, Setting] = {}


def _declare(setting: Setting) -> Setting:
    SETTINGS[setting.name] = setting
    return setting


_INT = _positive(int, "a positive whole number")
_NUMBER = _positive(float, "a positive number")

HOME = _declare(Setting("home", "MLOPS_HOME", _text, None, "Workspace folder (default ./.mlops)."))
BACKEND = _declare(Setting("backend", "MLOPS_BACKEND", _text, "local", "Backend: local or cpd."))
VOLUMES = _declare(
    Setting(
        "volumes",
        "MLOPS_VOLUMES",
        _text,
        None,
        "Local storage volumes' folder (default <workspace>/volumes).",
    )
)
GPUS = _declare(
    Setting(
        "gpus",
        "MLOPS_GPUS",
        _text,
        None,
        "Comma list of GPU indices the local service may use (default: all).",
    )
)
MIN_SCHEDULE_S = _declare(
    Setting(
        "min_schedule_s",
        "MLOPS_MIN_SCHEDULE_S",
        _INT,
        60,
        "Smallest repeat of a monitor schedule, in seconds; stored with the workspace.",
        "workspace",
    )
)
ARCHIVE_MAX_BYTES = _declare(
    Setting(
        "archive_max_bytes", "MLOPS_ARCHIVE_MAX_BYTES", _INT, 20 * 1024**3, "Bytes an archive may unpack to."
    )
)
ARCHIVE_MAX_ENTRIES = _declare(
    Setting("archive_max_entries", "MLOPS_ARCHIVE_MAX_ENTRIES", _INT, 100_000, "Files an archive may hold.")
)
ARCHIVE_MAX_RATIO = _declare(
    Setting(
        "archive_max_ratio",
        "MLOPS_ARCHIVE_MAX_RATIO",
        _NUMBER,
        200.0,
        "Largest ratio of data unpacked to the archive's size.",
    )
)
KERNEL_LOG_MB = _declare(
    Setting("kernel_log_mb", "MLOPS_KERNEL_LOG_MB", _NUMBER, 10.0, "MB of a local deployment's log file.")
)
KERNEL_LOG_FILES = _declare(
    Setting("kernel_log_files", "MLOPS_KERNEL_LOG_FILES", _INT, 3, "Log files kept per local deployment.")
)
SERVICE_LOG_MB = _declare(
    Setting("service_log_mb", "MLOPS_SERVICE_LOG_MB", _NUMBER, 10.0, "MB of the local service's service.log.")
)
SERVICE_LOG_FILES = _declare(
    Setting("service_log_files", "MLOPS_SERVICE_LOG_FILES", _INT, 3, "service.log files kept (rotated).")
)
SERVICE_IDLE_TIMEOUT = _declare(
    Setting(
        "service_idle_timeout",
        "MLOPS_SERVICE_IDLE_TIMEOUT",
        _NUMBER,
        60.0,
        "Seconds the service keeps an idle connection.",
    )
)
SERVICE_MAX_CONNECTIONS = _declare(
    Setting(
        "service_max_connections",
        "MLOPS_SERVICE_MAX_CONNECTIONS",
        _INT,
        1000,
        "Connections the service accepts.",
    )
)
SERVICE_MAX_BODY = _declare(
    Setting(
        "service_max_body",
        "MLOPS_SERVICE_MAX_BODY",
        _INT,
        1 << 30,
        "Bytes of a request body (not a tar upload).",
    )
)
LAB_OPEN_PANEL = _declare(
    Setting(
        "lab_open_panel",
        "MLOPS_LAB_OPEN_PANEL",
        _flag,
        False,
        "JupyterLab opens the panel at start (mlops lab).",
    )
)
CPD_CA_BUNDLE = _declare(
    Setting(
        "cpd_ca_bundle",
        "MLOPS_CPD_CA_BUNDLE",
        _text,
        None,
        "PEM file of CAs to trust (else $REQUESTS_CA_BUNDLE).",
    )
)
CPD_SDK = _declare(
    Setting(
        "cpd_sdk",
        "MLOPS_CPD_SDK",
        str.lower,
        None,
        "Force wml or watsonx (default: by the cluster's version).",
    )
)
CPD_RETRIES = _declare(
    Setting(
        "cpd_retries", "MLOPS_CPD_RETRIES", _INT, 3, "Tries of a cluster request that failed transiently."
    )
)
CPD_RETRY_DELAY = _declare(
    Setting(
        "cpd_retry_delay", "MLOPS_CPD_RETRY_DELAY", _NUMBER, 0.5, "Seconds before the first retry (doubling)."
    )
)
CPD_EDI_TIMEOUT = _declare(
    Setting(
        "cpd_edi_timeout",
        "MLOPS_CPD_EDI_TIMEOUT",
        _NUMBER,
        600.0,
        "Seconds to wait for an EDI deployment's state.",
    )
)
CPD_MEASUREMENT_WAIT = _declare(
    Setting(
        "cpd_measurement_wait",
        "MLOPS_CPD_MEASUREMENT_WAIT",
        _NUMBER,
        60.0,
        "Seconds to wait for a published measurement to become readable (OpenScale answers 202).",
    )
)
CPD_SOFTWARE_SPEC = _declare(
    Setting(
        "cpd_software_spec",
        "MLOPS_CPD_SOFTWARE_SPEC",
        _text,
        None,
        "Runtime of a published monitor provider.",
    )
)
CPD_HARDWARE_SPEC = _declare(
    Setting(
        "cpd_hardware_spec",
        "MLOPS_CPD_HARDWARE_SPEC",
        _text,
        None,
        "Hardware of a published monitor provider.",
    )
)
CPD_CUSTOM_METRICS_WAIT_TIME = _declare(
    Setting(
        "cpd_custom_metrics_wait_time",
        "MLOPS_CPD_CUSTOM_METRICS_WAIT_TIME",
        _INT,
        360,
        "Seconds OpenScale waits for a custom monitor's provider.",
    )
)

MAX_EVALUATIONS = _declare(
    Setting(
        "max_evaluations",
        "MLOPS_MAX_EVALUATIONS",
        _INT,
        None,
        "Scheduled evaluations the local service runs at once (default: the number of CPUs); "
        "stored with the workspace.",
        "workspace",
    )
)
NOTIFY_RETRY_S = _declare(
    Setting(
        "notify_retry_s",
        "MLOPS_NOTIFY_RETRY_S",
        _NUMBER,
        30.0,
        "Seconds before a failed notification is retried (doubling, at most an hour); stored with the workspace.",
        "workspace",
    )
)
NOTIFY_HORIZON_S = _declare(
    Setting(
        "notify_horizon_s",
        "MLOPS_NOTIFY_HORIZON_S",
        _NUMBER,
        24 * 3600.0,
        "Seconds a notification is retried before it is marked failed; stored with the workspace.",
        "workspace",
    )
)

DEEPLIIF_PYTHON = _declare(
    Setting(
        "deepliif_python",
        "MLOPS_DEEPLIIF_PYTHON",
        _text,
        None,
        "Python of the DeepLIIF runtime for `mlops demo --real-model` (default ./.venv-deepliif).",
    )
)


def _stored(ws: Workspace) -> dict[str, str]:
    with ws.tables(_SCHEMA) as conn:
        return {r["name"]: r["value"] for r in conn.execute("SELECT name, value FROM settings")}


def store(ws: Workspace, setting: Setting, raw: str | None) -> None:
    """Keep `raw` as the workspace's value of a workspace setting (None forgets it)."""
    if setting.scope != "workspace":
        raise MlopsError(
            f"setting {setting.name} belongs to each process (its environment variable {setting.env})"
        )
    if raw is not None:
        setting.value_of(raw, f"setting {setting.name}")
    with ws.tables(_SCHEMA) as conn:  # one statement: atomic on its own
        if raw is None:
            conn.execute("DELETE FROM settings WHERE name = ?", (setting.name,))
        else:
            conn.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (setting.name, raw))


def of_workspace(ws: Workspace, setting: Setting) -> Any:
    """A workspace setting's value as every process sees it (see the module)."""
    return resolve(ws, setting)[0]


def resolve(ws: Workspace | None, setting: Setting) -> tuple[Any, str]:
    """(value, where it came from: "default", "environment" or "workspace")."""
    raw_env = os.environ.get(setting.env, "").strip()
    if setting.scope == "process" or ws is None:
        return setting.from_env(), "environment" if raw_env else "default"
    stored = _stored(ws).get(setting.name)
    if raw_env and raw_env != stored:
        store(ws, setting, raw_env)
        stored = raw_env
    if stored is None:
        return setting.default, "default"
    return setting.value_of(stored, f"setting {setting.name} of workspace {ws.root}"), "workspace"


def listing(ws: Workspace | None) -> list[tuple[Setting, Any, str]]:
    """Every setting with its value and source, in declaration order."""
    return [(s, *resolve(ws, s)) for s in SETTINGS.values()]


def by_name(name: str) -> Setting:
    """The setting `name` (its environment variable accepted too)."""
    for s in SETTINGS.values():
        if name in (s.name, s.env):
            return s
    raise MlopsError(f"no setting named {name!r}; known: {', '.join(SETTINGS)}")
