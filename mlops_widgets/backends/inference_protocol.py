"""The inference protocol: an EDI-style service (WMLA `/dlim/v1`) of deployments served by
kernels, implemented by the local service and by WMLA on Cloud Pak for Data."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mlops_widgets.backends.views import DeploymentView
from mlops_widgets.errors import MlopsError


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

    Deployments are seen as `DeploymentView`s (backends/views.py), derived from EDI's documents
    by `backends/edi_view.py` on both backends. Failures raise MlopsError subclasses (NotFoundError, ConflictError); a failed inference
    request raises an MlopsError carrying `.status` (500, 503, 504).
    """

    def deploy(
        self,
        name: str,
        folder: Path,
        *,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> DeploymentView:
        """Deploy (or update, when stopped) a submission folder under `name`; it ends stopped.
        `custom_args` and `secret_args` become module-level names of the kernel file (as the
        original injected them); secret values are never written to disk."""
        ...

    def list(self) -> list[DeploymentView]:
        """Every deployment's view."""
        ...

    def view(self, name: str) -> DeploymentView:
        """The deployment with its state and kernels' status; NotFoundError when missing."""
        ...

    def get_profile(self, name: str) -> dict[str, Any]:
        """The profile as `dlim model viewprofile -j` shows it: policy, resource_allocation, kernel."""
        ...

    def update_profile(self, name: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Lay `profile` (all or some sections) over the current one; refused (ConflictError)
        while started. Returns the profile as stored."""
        ...

    def start(self, name: str, *, secret_args: dict[str, str] | None = None) -> DeploymentView:
        """Start (or restart a failed) deployment without waiting for its kernels; returns its
        view. `secret_args` re-supplies secret custom args a restarted service no longer holds
        (else they come from environment variables of the same names)."""
        ...

    def stop(self, name: str) -> DeploymentView:
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
