"""A backend: its five services behind protocols (the space here; inference, monitoring, volumes
and training in `<service>_protocol.py` beside this module), built on first use.

Ops talk to these and nothing else, so the same templates and commands run on the embedded
backend and on Cloud Pak for Data. Objects cross the boundary as typed views (`views.py`: frozen
dataclasses, the same on every backend) or as dicts shaped like the originals (WML assets,
dlim profiles, OpenScale resources).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from mlops_widgets.settings import BACKEND
from mlops_widgets.workspace import Workspace

if TYPE_CHECKING:
    from mlops_widgets.backends.inference_protocol import Inference
    from mlops_widgets.backends.monitoring_protocol import Monitoring
    from mlops_widgets.backends.training_protocol import Training
    from mlops_widgets.backends.volumes_protocol import Volumes

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


class Backend:
    """The services of one backend, built on first use (so `mlops config list` never starts
    an inference server or imports an SDK it does not need)."""

    def __init__(self, name: str, workspace: Workspace, factories: dict[str, Callable[[], object]]):
        self.name = name
        self.workspace = workspace
        self._factories = factories
        self._built: dict[str, object] = {}

    def _get(self, service: str) -> object:
        if service not in self._built:
            self._built[service] = self._factories[service]()
        return self._built[service]

    @property
    def space(self) -> Space:
        return cast("Space", self._get("space"))

    @property
    def inference(self) -> Inference:
        return cast("Inference", self._get("inference"))

    @property
    def monitoring(self) -> Monitoring:
        return cast("Monitoring", self._get("monitoring"))

    @property
    def volumes(self) -> Volumes:
        return cast("Volumes", self._get("volumes"))

    @property
    def training(self) -> Training:
        return cast("Training", self._get("training"))

    def kernel_environment(self) -> dict[str, str]:
        """What a deployed kernel's helper modules (edi_helpers/) need to find this backend: its
        name, and what a backend adds (its workspace, its cluster). A submission sets them in
        model.json whatever the backend, so no caller switches on the backend's name."""
        return {BACKEND.env: self.name}

    def __repr__(self) -> str:
        return f"<Backend {self.name} {self.workspace.root}>"
