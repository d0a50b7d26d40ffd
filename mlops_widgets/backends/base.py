"""The protocols every backend implements: a space, an inference service, a monitoring service,
storage volumes, training jobs.

Ops talk to these and nothing else, so the same templates and commands run on the embedded
backend and on Cloud Pak for Data. Objects cross the boundary as plain dicts and dataclasses
shaped like the originals (WML assets, dlim models, OpenScale resources).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace

if TYPE_CHECKING:
    from mlops_widgets.monitors.definitions import MonitorDefinition

# The two metadata documents of a space, as the original named them.
DEPLOYMENT_METADATA = "deployment_metadata.yml"
MONITOR_METADATA = "monitor_metadata.yml"

# progress(done, total, what): None total when unknown.
Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class Asset:
    """A data asset of a space: a file, or a folder uploaded as `<folder>.zip`."""

    asset_id: str
    name: str
    size: int
    created_at: str  # ISO 8601, UTC

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Space(Protocol):
    """A deployment space: data assets and the metadata documents."""

    space_id: str

    def upload(self, path: Path, *, progress: Progress | None = None) -> Asset:
        """Upload a file, or a folder as `<folder>.zip` (streamed, bounded memory)."""
        ...

    def list_assets(self, name: str | None = None, *, keep_only_latest: bool = False) -> list[Asset]:
        """Assets, newest first; filtered by exact name; with keep_only_latest one per name."""
        ...

    def get_asset(self, asset_id: str) -> Asset:
        """One asset; NotFoundError when missing."""
        ...

    def download(self, asset_id: str, dest: Path) -> Path:
        """Write the asset's bytes to `dest` (a file path) and return it."""
        ...

    def delete(self, asset_id: str) -> None:
        """Delete an asset; NotFoundError when missing."""
        ...

    def read_document(self, name: str) -> dict[str, Any]:
        """A metadata document (a mapping); {} when it does not exist yet."""
        ...

    def update_document(
        self, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Atomically read-modify-write a metadata document: `change` gets the current mapping and
        mutates it in place (or returns a new one); no concurrent update is lost and a crash
        never leaves half a document. Returns the document as written."""
        ...


def overlay_profile(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`update` laid over `current`, section by section (what `Inference.update_profile` does, so a
    caller may send only the policy); neither argument is changed."""
    out = copy.deepcopy(current)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay_profile(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class InferenceError(MlopsError):
    """An inference request the service answered with an error (`status`: 500, 503, 504...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@runtime_checkable
class Inference(Protocol):
    """An EDI-style inference service (WMLA `/dlim/v1`): deployments served by kernels.

    A deployment view is a dict with at least: name, state ("started" | "stopped"), status
    (STOPPED, STARTING, IDLE, BUSY, FAILED, STOPPING, or SERVICE_DOWN when the local service is
    not running), url, kernels (list of {pod, pid, state, gpu, ...}), error (None or the text,
    e.g. an on_kernel_start failure; error_log then holds the kernel log's tail), warnings,
    profile, custom_args and secret_args (names only). Ready to serve = IDLE or BUSY.
    Failures raise MlopsError subclasses (NotFoundError, ConflictError); a failed inference
    request raises an MlopsError carrying `.status` (500, 503, 504).
    """

    def deploy(
        self,
        name: str,
        folder: Path,
        *,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Deploy (or update, when stopped) a submission folder under `name`; it ends stopped.
        `custom_args` and `secret_args` become module-level names of the kernel file (as the
        original injected them); secret values are never written to disk."""
        ...

    def list(self) -> list[dict[str, Any]]:
        """Every deployment's view."""
        ...

    def view(self, name: str) -> dict[str, Any]:
        """The deployment with its state and kernels' status; NotFoundError when missing."""
        ...

    def get_profile(self, name: str) -> dict[str, Any]:
        """The profile as `dlim model viewprofile -j` shows it: policy, resource_allocation, kernel."""
        ...

    def update_profile(self, name: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Lay `profile` (all or some sections) over the current one; refused (ConflictError)
        while started. Returns the profile as stored."""
        ...

    def start(self, name: str, *, secret_args: dict[str, str] | None = None) -> dict[str, Any]:
        """Start (or restart a failed) deployment without waiting for its kernels; returns its
        view. `secret_args` re-supplies secret custom args a restarted service no longer holds
        (else they come from environment variables of the same names)."""
        ...

    def stop(self, name: str) -> dict[str, Any]:
        """Stop every kernel (on_kernel_shutdown first); returns the view."""
        ...

    def undeploy(self, name: str) -> None:
        """Remove a deployment; refused (ConflictError) while started."""
        ...

    def infer(self, name: str, body: bytes) -> bytes:
        """Send a request body verbatim to a kernel; its output comes back verbatim."""
        ...

    def url(self, name: str) -> str:
        """The deployment's inference URL, as written into the entry's deployment_url."""
        ...

    def logs(self, name: str, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """The kernels' stdout and stderr, line by line, oldest first, each line naming its
        kernel: all of it, or the last `tail` lines; with `follow`, then each new line as it
        is written, until the caller stops iterating."""
        ...


# --- Storage volumes --------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeFile:
    """A file on a storage volume: its path relative to the volume, size and modification time."""

    path: str
    size: int
    modified: float  # epoch seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Volumes(Protocol):
    """Storage volumes (Cloud Pak for Data's; folders on the local backend): where images,
    ground truth and predictions live for scoring, the monitors and the kernels.

    Paths are relative to the volume, `/`-separated; `..`, absolute paths and empty parts are
    refused (MlopsError). A missing volume or path is a NotFoundError naming it.
    """

    def list_volumes(self) -> list[str]:
        """The volumes' display names."""
        ...

    def list_files(
        self,
        volume: str,
        folder: str = "",
        *,
        recursive: bool = False,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> list[VolumeFile]:
        """Regular, non-hidden files under `folder` (directly in it unless `recursive`), sorted by
        path; `most_recent`: only those modified in the last N days; `extensions`: only these
        suffixes (".png", case-insensitive)."""
        ...

    def read(self, volume: str, path: str) -> bytes:
        """A file's bytes."""
        ...

    def write(self, volume: str, path: str, data: bytes) -> VolumeFile:
        """Create or replace a file (its folders created); never half-written."""
        ...

    def upload_folder(
        self, volume: str, source: Path, folder: str = "", *, progress: Progress | None = None
    ) -> list[VolumeFile]:
        """Copy the files of the local folder `source` (recursively) under `folder`."""
        ...

    def download_folder(
        self,
        volume: str,
        folder: str,
        dest: Path,
        *,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> Path:
        """Copy the files directly in `folder` into the local folder `dest` (created), keeping
        their modification times; returns `dest`."""
        ...

    def local_path(self, volume: str, path: str = "") -> Path | None:
        """Where the file or folder lies on this machine (local backend), else None: callers
        that can read in place skip a download."""
        ...


# --- Monitoring (OpenScale's model) -------------------------------------------------------------
#
# Every object crosses the boundary as OpenScale returns it:
#     {"metadata": {"id": str, "url": str, "created_at": ISO-8601 UTC}, "entity": {...}}
# so status code reads both backends alike. The entity fields each backend must fill:
#   service provider   {name, description, service_type, status: {state}}
#   subscription       {service_provider_id, asset: {asset_id, name, asset_type, url},
#                       deployment: {deployment_id, name, url, deployment_type}, status: {state}}
#                      (asset.name is the subscription name "<deployment name> Monitor";
#                       deployment.name is the EDI deployment's name)
#   monitor definition {name, description, metrics: [{id, name, thresholds: [{type, default}]}], tags}
#                      (threshold type: "lower_limit" | "upper_limit")
#   integrated system  {name, type ("custom_metrics_provider"), description, connection: {...}}
#   monitor instance   {monitor_definition_id, target: {target_type: "subscription", target_id},
#                       parameters: {...}, thresholds: [{metric_id, type, value}], status: {state}}
#   run                {monitor_instance_id, triggered_by, status: {state: "running"|"finished"|
#                       "error", started_at, completed_at, failure: {errors: [{code, message}]}}}
#   measurement        {monitor_instance_id, monitor_definition_id, run_id, timestamp, issue_count,
#                       target: {target_type, target_id},
#                       values: [{metrics: [{id, value, lower_limit? , upper_limit?}], tags: []}]}
# Lists are newest first unless said otherwise. A missing id raises NotFoundError.

Resource = dict[str, Any]

# OpenScale run states.
RUN_RUNNING = "running"
RUN_FINISHED = "finished"
RUN_ERROR = "error"


@runtime_checkable
class ServiceProviders(Protocol):
    """Where monitored deployments live (`wos_client.service_providers`); EDI is not an
    OpenScale built-in, so a "headless" custom provider stands in (notebook C1)."""

    def list(self, name: str | None = None) -> list[Resource]:
        """Providers, oldest first (the original took the first match by name)."""
        ...

    def get(self, service_provider_id: str) -> Resource: ...

    def add(
        self, name: str, *, service_type: str = "custom_machine_learning", description: str = ""
    ) -> Resource:
        """Create a provider (OpenScale allows several with one name; callers check first)."""
        ...

    def delete(self, service_provider_id: str) -> None: ...


@runtime_checkable
class Subscriptions(Protocol):
    """One subscription per monitored deployment (`wos_client.subscriptions`)."""

    def list(
        self, *, service_provider_id: str | None = None, name: str | None = None
    ) -> list[Resource]:
        """Subscriptions, filtered by provider and by subscription name (entity.asset.name)."""
        ...

    def get(self, subscription_id: str) -> Resource: ...

    def add(
        self,
        *,
        service_provider_id: str,
        name: str,
        deployment_name: str,
        deployment_url: str = "",
    ) -> Resource:
        """Subscribe a deployment; `name` is the subscription name ("<deployment name> Monitor")."""
        ...

    def delete(self, subscription_id: str) -> None:
        """Drop a subscription with its monitor instances, runs and measurements."""
        ...


@runtime_checkable
class MonitorDefinitions(Protocol):
    """Which metrics a monitor publishes, with ids and default thresholds
    (`wos_client.monitor_definitions`)."""

    def list(self) -> list[Resource]: ...

    def get(self, monitor_definition_id: str) -> Resource:
        """NotFoundError names the known definitions and how to register one."""
        ...

    def add(self, definition: MonitorDefinition) -> Resource:
        """Create the definition (the B2 step), or return it when one with this id exists."""
        ...


@runtime_checkable
class IntegratedSystems(Protocol):
    """Endpoints that compute a custom monitor's metrics (`wos_client.integrated_systems`)."""

    def list(self, type: str | None = None) -> list[Resource]: ...

    def get(self, integrated_system_id: str) -> Resource: ...

    def add(
        self,
        name: str,
        *,
        type: str = "custom_metrics_provider",
        description: str = "",
        connection: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
    ) -> Resource:
        """Register an endpoint. `credentials`: how the service signs in to it (remote backends;
        the embedded backend calls nothing and keeps none, so no secret lands in its database)."""
        ...

    def delete(self, integrated_system_id: str) -> None: ...

    def publish_provider(
        self, definition: MonitorDefinition, *, software_spec: str | None = None
    ) -> dict[str, Any]:
        """Make `definition`'s provider callable by the monitoring service and register it as an
        integrated system (`monitor publish`). Remote backends deploy it (a WML function on
        Cloud Pak for Data, runtime `software_spec`) and give the service the credentials to
        call it. Returns integrated_system_id, endpoint and wml_deployment_id (None when nothing
        was deployed)."""
        ...


@runtime_checkable
class MonitorInstances(Protocol):
    """One instance per (subscription, monitor definition), carrying threshold overrides and the
    provider's parameters (`wos_client.monitor_instances`)."""

    def list(
        self, *, target_id: str | None = None, monitor_definition_id: str | None = None
    ) -> list[Resource]:
        """Instances, filtered by subscription id (target_id) and definition."""
        ...

    def get(self, monitor_instance_id: str) -> Resource: ...

    def create(
        self,
        *,
        monitor_definition_id: str,
        target_id: str,
        thresholds: list[dict[str, Any]],
        parameters: dict[str, Any],
    ) -> Resource:
        """Attach a definition to a subscription. `thresholds` are OpenScale's
        `[{metric_id, type: "lower_limit"|"upper_limit", value}]`; an unknown metric id is an
        MlopsError naming the definition's metrics. ConflictError when one already exists."""
        ...

    def update(
        self,
        monitor_instance_id: str,
        *,
        thresholds: list[dict[str, Any]] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Resource:
        """Replace thresholds and/or parameters (OpenScale's PATCH of /thresholds, /parameters)."""
        ...

    def set_schedule(self, monitor_instance_id: str, schedule: dict[str, Any] | None) -> Resource:
        """Replace the instance's `schedule` (OpenScale's shape, see `monitors.schedule`; None
        removes it). Who runs it is the backend's: OpenScale on cpd, the workspace's service
        locally (started when an enabled schedule is set)."""
        ...

    def delete(self, monitor_instance_id: str) -> None: ...


@runtime_checkable
class Runs(Protocol):
    """Evaluations of a monitor instance (`wos_client.monitor_instances.runs`)."""

    def add(self, monitor_instance_id: str, *, triggered_by: str = "user") -> Resource:
        """Start an evaluation (OpenScale's manual run). The embedded backend computes it before
        returning (state finished or error); a remote one may return it running: poll `get`."""
        ...

    def get(self, monitor_instance_id: str, run_id: str) -> Resource: ...

    def list(self, monitor_instance_id: str, *, limit: int | None = None) -> list[Resource]:
        """Runs, newest first."""
        ...


@runtime_checkable
class Measurements(Protocol):
    """What a run published (`wos_client.monitor_instances.measurements`)."""

    def add(
        self,
        monitor_instance_id: str,
        *,
        run_id: str,
        metrics: dict[str, float],
        timestamp: str | None = None,
    ) -> Resource:
        """Publish one measurement: `metrics` maps metric id -> value; the service attaches each
        metric's limit from the instance's thresholds and counts the issues."""
        ...

    def query(
        self, *, target_id: str, monitor_definition_id: str, recent_count: int = 1
    ) -> list[Resource]:
        """The latest measurements of a definition on a subscription (as the original queried)."""
        ...

    def list(self, monitor_instance_id: str, *, limit: int | None = None) -> list[Resource]:
        """Measurements of an instance, newest first (history)."""
        ...


@runtime_checkable
class Monitoring(Protocol):
    """OpenScale's model: service providers, subscriptions, monitor definitions, integrated
    systems, monitor instances, runs and measurements, one attribute per OpenScale client area
    so the cpd backend maps each onto `wos_client.<area>` almost verbatim."""

    service_providers: ServiceProviders
    subscriptions: Subscriptions
    monitor_definitions: MonitorDefinitions
    integrated_systems: IntegratedSystems
    monitor_instances: MonitorInstances
    runs: Runs
    measurements: Measurements


# --- Training (WMLA's deep-learning v1 execs) -------------------------------------------------
#
# A job view is a dict: id, state (one of JOB_STATES), framework, main, workers, devices_per_worker,
# memory, data (the data path's volume and folder, or None), created_at, started_at, ended_at
# (ISO 8601 UTC or None), exit_codes (worker -> code, local), error (None or the text; with
# error_log, the tail of the failing worker's log), output (where the job's output folder is:
# a local path, or the exec's result on the cluster).

JOB_SUBMITTED = "submitted"
JOB_RUNNING = "running"
JOB_FINISHED = "finished"
JOB_FAILED = "failed"
JOB_KILLED = "killed"
JOB_STATES = (JOB_SUBMITTED, JOB_RUNNING, JOB_FINISHED, JOB_FAILED, JOB_KILLED)
JOB_ENDED = (JOB_FINISHED, JOB_FAILED, JOB_KILLED)
# WMLA's framework names (dlicmd --exec-start); the distributed ones start numWorker workers
# that find each other through torchrun's variables.
FRAMEWORKS = ("PyTorch", "distPyTorch", "TensorFlow", "distTensorFlow")
DISTRIBUTED = ("distPyTorch", "distTensorFlow")


@dataclass(frozen=True)
class TrainingSpec:
    """What a training submission asks for, in WMLA's terms (dlicmd's options)."""

    framework: str  # --exec-start
    main: str  # --model-main: the script run in the submission folder
    workers: int = 1  # --numWorker
    devices_per_worker: int = 0  # --workerDeviceNum (GPUs)
    memory: str = "8g"  # --workerMemory
    data_volume: str | None = None  # the storage volume holding the data (--cs-datastore-meta)
    data_path: str | None = None  # the data folder on that volume
    env: dict[str, str] | None = None  # --msd-env, non-secret variables
    args: tuple[str, ...] = ()  # arguments of the main script

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["args"] = list(self.args)
        return out

    def check(self, folder: Path) -> None:
        """Refuse a submission of `folder` before anything is copied or sent: one message
        naming what is wrong."""
        if self.framework not in FRAMEWORKS:
            raise MlopsError(f"framework {self.framework!r} is not one of {', '.join(FRAMEWORKS)}")
        if not folder.is_dir():
            raise NotFoundError(f"the submission folder {folder} does not exist")
        main = Path(self.main)
        if not self.main or main.is_absolute() or ".." in main.parts or not (folder / main).is_file():
            raise NotFoundError(f"the main file {self.main!r} is not in the submission folder {folder}")
        if self.workers < 1 or self.devices_per_worker < 0:
            raise MlopsError(f"workers must be at least 1 and devices per worker at least 0, got "
                             f"{self.workers} and {self.devices_per_worker}")
        if self.workers > 1 and self.framework not in DISTRIBUTED:
            raise MlopsError(
                f"framework {self.framework} runs one worker, {self.workers} were asked for",
                hint=Hint("train.distributed", "choose a distributed framework (distPyTorch) or one worker",
                          {"frameworks": list(DISTRIBUTED)}),
            )
        if not re.match(r"^\d+(\.\d+)?[kKmMgG]?$", str(self.memory)):
            raise MlopsError(f"worker memory {self.memory!r} must be a size such as 512m or 8g")
        for name in self.env or {}:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(name)):
                raise MlopsError(f"job environment variable {name!r} is not a valid variable name")


@runtime_checkable
class Training(Protocol):
    """Training jobs (WMLA's deep-learning execs): a submission folder run by one or more
    workers, each with its own log; ended jobs keep their output folder for staging."""

    def submit(
        self, folder: Path, spec: TrainingSpec, *, secret_env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Submit a copy of `folder` as a job and return its view (submitted or running).
        `secret_env` become environment variables of the workers, never written to disk."""
        ...

    def list(self) -> list[dict[str, Any]]:
        """Every job's view, newest first."""
        ...

    def get(self, job_id: str) -> dict[str, Any]:
        """One job's view; NotFoundError when missing."""
        ...

    def logs(
        self, job_id: str, *, worker: int | None = None, tail: int | None = None, follow: bool = False
    ) -> Iterator[str]:
        """The workers' output (one worker's with `worker`), oldest first: all, or the last
        `tail` lines; with `follow`, then each new line until the job ends or the caller stops."""
        ...

    def stop(self, job_id: str) -> dict[str, Any]:
        """Kill every process of the job; it ends killed (an ended job is left as it is)."""
        ...

    def download_output(self, job_id: str, dest: Path) -> Path:
        """The job's output folder copied into the new folder `dest`; MlopsError unless the
        job finished."""
        ...


class Backend:
    """The services of one backend, built on first use (so `mlops config list` never starts
    an inference server or imports an SDK it does not need)."""

    def __init__(self, name: str, workspace: Workspace, factories: dict[str, Callable[[], Any]]):
        self.name = name
        self.workspace = workspace
        self._factories = factories
        self._built: dict[str, Any] = {}

    def _get(self, service: str) -> Any:
        if service not in self._built:
            self._built[service] = self._factories[service]()
        return self._built[service]

    @property
    def space(self) -> Space:
        return self._get("space")

    @property
    def inference(self) -> Inference:
        return self._get("inference")

    @property
    def monitoring(self) -> Monitoring:
        return self._get("monitoring")

    @property
    def volumes(self) -> Volumes:
        return self._get("volumes")

    @property
    def training(self) -> Training:
        return self._get("training")

    def __repr__(self) -> str:
        return f"<Backend {self.name} {self.workspace.root}>"
