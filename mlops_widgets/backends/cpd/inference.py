"""WMLA Elastic Distributed Inference through IBM's own EDI v2 client (ibm-wmla), no `dlim` binary.

Management (deploy, view, start, stop, profile, undeploy) goes through
`ElasticDistributedInferenceV2` on the WMLA console (WMLA_HOST), with the Cloud Pak for Data
token as `X-Auth-Token`; its documents are read through IBM's model classes (edi.py).
Inference goes to the inference host (WMLA_INFERENCE_HOST) over REST with
`Authorization: Bearer <token>`, as the original team's inference demo sent it to its cluster,
because the client's `run_inference` re-encodes the body (drops null fields, needs a dict)
where EDI hands the kernel the body verbatim.

Start and stop are asynchronous on EDI (edi.py has the recorded states): `start` waits for
`enabled`, `stop` for `disabled`, each at most MLOPS_CPD_EDI_TIMEOUT seconds; a redeploy or an
undeploy of a deployment that is not disabled stops it and waits first (EDI refuses both while
started), letting a start under way (`not-available`) finish before the stop.

Custom args: the original pasted `KEY=VALUE` lines into the kernel file, credentials included.
Here the kernel file gets one module-level line per arg: plain values as literals, secret ones
as `os.environ.get('KEY')`, their values going only into the deployment profile's
`kernel.envs` on the cluster: never into a file, the workspace or a log.
"""

from __future__ import annotations

import copy
import json
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_widgets.backends.cpd import edi
from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.cpd.session import error_text
from mlops_widgets.backends.edi_view import ATTR_CUSTOM, ATTR_SECRET, NO_INSTANCE, deployment_view, phase
from mlops_widgets.backends.inference_protocol import InferenceError, overlay_profile
from mlops_widgets.backends.views import DeploymentView
from mlops_widgets.config import check_deployment_name
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.secret_names import is_secret_name

API = "/dlim/v1"
ANY_STATUS = tuple(range(100, 600))
INJECT_BEGIN = "# --- custom args injected by mlops-widgets (secrets come from kernel.envs) ---"
INJECT_END = "# --- end of custom args ---"


def inject_custom_args(
    kernel: Path, custom_args: dict[str, str], secret_names: list[str] | tuple[str, ...]
) -> None:
    """Make each custom arg a module-level name of the kernel file, as the original's injection
    did, after any `from __future__` import; secret values are read from the environment."""
    if not custom_args and not secret_names:
        return
    for key in [*custom_args, *secret_names]:
        if not key.isidentifier():
            raise MlopsError(f"custom arg {key!r} is not a valid Python name")
    lines = [INJECT_BEGIN, "import os as _mlops_os"]
    lines += [f"{k} = {v!r}" for k, v in custom_args.items()]
    lines += [f"{k} = _mlops_os.environ.get({k!r})" for k in secret_names]
    lines.append(INJECT_END)
    source = kernel.read_text(encoding="utf-8").splitlines(keepends=True)
    at = 0
    for i, line in enumerate(source):
        if line.startswith("from __future__ import"):
            at = i + 1
    block = "".join(line + "\n" for line in lines)
    kernel.write_text("".join(source[:at]) + block + "".join(source[at:]), encoding="utf-8")


def _merge_envs(profile: dict[str, Any], envs: dict[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(profile)
    kernel = out.setdefault("kernel", {})
    current = [e for e in kernel.get("envs") or [] if e.get("name") not in envs]
    kernel["envs"] = current + [{"name": k, "value": v} for k, v in envs.items()]
    return out


def _redacted(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile for display: values of secret-looking kernel env variables masked."""
    out = copy.deepcopy(profile)
    for env in (out.get("kernel") or {}).get("envs") or []:
        if is_secret_name(str(env.get("name", ""))):
            env["value"] = "***"
    return out


class CpdInference:
    """WMLA EDI deployments behind the Inference protocol."""

    def __init__(self, session: CpdSession) -> None:
        session.settings.require("inference")
        self._s = session
        self._inference = f"{session.settings.inference_url}{API}"

    def _edi(self, what: str, call: Callable[[Any], Any], *, idempotent: bool = True) -> Any:
        """One call of IBM's EDI client, its JSON body back (errors in our words)."""
        return self._s.call(what, lambda: edi.result_json(call(self._s.edi())), idempotent=idempotent)

    # -- deploy --------------------------------------------------------------------------------

    def deploy(
        self,
        name: str,
        folder: Path,
        *,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> DeploymentView:
        """Upload the submission folder as a gzip tar; an existing deployment is stopped (and
        waited for) and updated, as the original forced. Secret custom args go into the
        profile's kernel.envs."""
        check_deployment_name(name)
        folder = Path(folder)
        with tempfile.TemporaryDirectory(prefix="mlops-edi-") as tmp:
            staged = Path(tmp) / name
            shutil.copytree(folder, staged, symlinks=False)
            model_json = staged / "model.json"
            try:
                desc = json.loads(model_json.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise MlopsError(f"{folder}/model.json is missing or not JSON: {exc}") from None
            # the names (never the values) of the custom args ride along as model attributes,
            # so `view` can say which the kernel gets
            attributes = [
                a for a in desc.get("attributes") or [] if a.get("key") not in (ATTR_CUSTOM, ATTR_SECRET)
            ]
            attributes += [
                {"key": ATTR_CUSTOM, "value": ",".join(sorted(custom_args or {}))},
                {"key": ATTR_SECRET, "value": ",".join(sorted(secret_args or {}))},
            ]
            desc.update(name=name, attributes=attributes)
            model_json.write_text(json.dumps(desc, indent=2), encoding="utf-8")
            kernel = staged / (desc.get("kernel_path") or "kernel.py")
            if not kernel.is_file():
                raise MlopsError(f"{folder} has no kernel file {kernel.name} (model.json kernel_path)")
            inject_custom_args(kernel, dict(custom_args or {}), list(secret_args or {}))
            package = Path(tmp) / f"{name}.tar.gz"
            with tarfile.open(package, "w:gz") as tar:
                tar.add(staged, arcname=name)
            exists = self._exists(name)
            if exists:
                self._stop_and_wait(name)

            def upload(client: Any) -> Any:
                with open(package, "rb") as body:  # opened per attempt: a retry after 401 re-reads
                    if not exists:
                        return client.deploy_model(body=body)
                    return client.re_deploy_model(name, body=body)

            self._edi(f"deploying {name} to WMLA", upload, idempotent=False)
        if secret_args:
            self.update_profile(name, _merge_envs(self.get_profile(name), dict(secret_args)))
        return self.view(name)

    # -- read ----------------------------------------------------------------------------------

    def _view(self, model: dict[str, Any], instance: dict[str, Any]) -> DeploymentView:
        name = str(model.get("name"))
        try:
            profile = _redacted(self.get_profile(name))
        except NotFoundError:  # removed since it was listed (as its instance then is)
            profile = {}
        return deployment_view(model, instance, service="wmla", url=self.url(name), profile=profile)

    def _model(self, name: str) -> dict[str, Any]:
        what = f"reading deployment {name}"
        return edi.parse_model(self._edi(what, lambda c: c.get_model(name)), what)

    def _instance(self, name: str) -> dict[str, Any]:
        """The state of an existing deployment; one with no instance (never started) is
        stopped."""
        what = f"reading the state of deployment {name}"
        try:
            raw = self._edi(what, lambda c: c.get_model_instance(name))
        except NotFoundError:
            return {"name": name, "state": NO_INSTANCE, "instances": []}
        return edi.parse_instance(raw, what)

    def _exists(self, name: str) -> bool:
        try:
            self._model(name)
        except NotFoundError:
            return False
        return True

    def list(self) -> list[DeploymentView]:
        what = "listing WMLA deployments"
        models = [edi.parse_model(m, what) for m in self._edi(what, lambda c: c.get_models()) or []]
        return [self._view(m, self._instance(str(m["name"]))) for m in models]

    def view(self, name: str) -> DeploymentView:
        check_deployment_name(name)
        return self._view(self._model(name), self._instance(name))

    def get_profile(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        return self._edi(f"reading the profile of {name}", lambda c: c.get_model_profile(name))

    def update_profile(self, name: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Lay `profile` over the current one (a caller may send only the policy) and put it
        back, as `dlim model viewprofile` + `updateprofile` did; WMLA refuses while started
        (ConflictError). Kernel environment variables merge by name, the new value winning."""
        check_deployment_name(name)
        current = self.get_profile(name)
        envs = {
            e["name"]: e.get("value", "")
            for source in (current, profile)
            for e in (source.get("kernel") or {}).get("envs") or []
        }
        merged = _merge_envs(overlay_profile(current, profile), envs)
        self._edi(f"updating the profile of {name}", lambda c: c.update_model_profile(name, merged))
        return self.get_profile(name)

    # -- lifecycle -----------------------------------------------------------------------------

    def _wait(self, name: str, target: str, instance: dict[str, Any] | None = None) -> dict[str, Any]:
        """Poll the instance until its phase is `target` (started, stopped)."""
        timeout = self._s.settings.edi_timeout
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            instance = instance or self._instance(name)
            if phase(instance) == target:
                return instance
            if time.monotonic() >= deadline:
                raise MlopsError(
                    f"deployment {name} did not reach the {target} state within {timeout:g} s "
                    f"(WMLA still reports {instance.get('state')!r})",
                    hint=Hint(
                        "deploy.view",
                        "look at the deployment's kernels in the WMLA console, "
                        "or allow more time with MLOPS_CPD_EDI_TIMEOUT",
                        {"name": name},
                    ),
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            instance = None

    def _stop_and_wait(self, name: str, instance: dict[str, Any] | None = None) -> None:
        """Stop and wait for `disabled`; a deployment still starting (not-available) is let
        finish its start first, so the stop is not lost in the transition."""
        instance = instance or self._instance(name)
        if phase(instance) == "stopped":
            return
        if phase(instance) == "starting":
            self._wait(name, "started", instance)
        self._edi(f"stopping deployment {name}", lambda c: c.stop_model_inference(name))
        self._wait(name, "stopped")

    def start(self, name: str, *, secret_args: dict[str, str] | None = None) -> DeploymentView:
        """Start and wait for the started state (kernels may still be starting: see `status`)."""
        check_deployment_name(name)
        if secret_args:
            self.update_profile(name, _merge_envs(self.get_profile(name), dict(secret_args)))
        self._edi(f"starting deployment {name}", lambda c: c.start_model_inference(name))
        self._wait(name, "started")
        return self.view(name)

    def stop(self, name: str) -> DeploymentView:
        """Stop and wait until WMLA reports the deployment disabled."""
        check_deployment_name(name)
        self._stop_and_wait(name)
        return self.view(name)

    def undeploy(self, name: str) -> None:
        """Remove the deployment, stopping it and waiting for `disabled` first (as IBM's
        example does before `delete_model`)."""
        check_deployment_name(name)
        self._stop_and_wait(name)
        self._edi(f"undeploying {name}", lambda c: c.delete_model(name))

    def infer(self, name: str, body: bytes) -> bytes:
        check_deployment_name(name)
        resp = self._s.http.request(
            "POST",
            self.url(name),
            what=f"inference on {name}",
            data=body,
            headers={"Content-Type": "application/json"},
            ok=ANY_STATUS,
        )
        if resp.status_code == 200:
            return resp.content
        message = f"inference on {name} failed ({resp.status_code}): {error_text(resp)}"
        if resp.status_code == 404:
            raise NotFoundError(message)
        raise InferenceError(resp.status_code, message)

    def url(self, name: str) -> str:
        return f"{self._inference}/inference/{quote(name, safe='')}"

    def logs(self, name: str, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """WMLA keeps kernel logs on the cluster; point there rather than pretend."""
        self.view(name)
        return iter(
            [
                f"kernel logs of {name} are kept by WMLA: open the WMLA console "
                f"({self._s.settings.wmla_url}) > Deployed models > {name} > Kernels, "
                "or read them on the cluster"
            ]
        )


__all__ = ["CpdInference", "inject_custom_args"]
