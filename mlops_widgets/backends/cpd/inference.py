"""WMLA Elastic Distributed Inference through its REST API (`/dlim/v1`), no `dlim` binary.

Management calls go to the WMLA console (WMLA_HOST), inference to the inference host
(WMLA_INFERENCE_HOST), both with the Cloud Pak for Data bearer token. WMLA labels JSON bodies
text/plain, so bodies are parsed regardless of content type.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_widgets.backends.base import InferenceError, overlay_profile
from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.cpd.session import error_text
from mlops_widgets.config import check_deployment_name
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.secret_names import is_secret_name

API = "/dlim/v1"
ANY_STATUS = tuple(range(100, 600))
ATTR_CUSTOM, ATTR_SECRET = "mlops_custom_args", "mlops_secret_args"
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


def _kernel(k: dict[str, Any]) -> dict[str, Any]:
    """A kernel as the embedded backend describes one; what WMLA does not say is None."""
    return {
        "pod": k.get("pod") or k.get("name") or k.get("id"),
        "state": str(k.get("state", "")).lower(),
        "pid": k.get("pid"),
        "gpu": k.get("gpu"),
        "tasks_done": k.get("tasks_done"),
        "started_at": k.get("started_at") or k.get("start_time"),
    }


def _attribute_names(model: dict[str, Any], key: str) -> list[str]:
    for a in model.get("attributes") or []:
        if a.get("key") == key:
            return [n for n in str(a.get("value") or "").split(",") if n]
    return []


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
        self._console = f"{session.settings.wmla_url}{API}"
        self._inference = f"{session.settings.inference_url}{API}"

    def _model(self, name: str, suffix: str = "") -> str:
        return f"{self._console}/model/{quote(name, safe='')}{suffix}"

    # -- deploy --------------------------------------------------------------------------------

    def deploy(
        self,
        name: str,
        folder: Path,
        *,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Upload the submission folder as a gzip tar; an existing deployment is updated (as the
        original forced). Secret custom args go into the profile's kernel.envs."""
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
            attributes = [a for a in desc.get("attributes") or []
                          if a.get("key") not in (ATTR_CUSTOM, ATTR_SECRET)]
            attributes += [{"key": ATTR_CUSTOM, "value": ",".join(sorted(custom_args or {}))},
                           {"key": ATTR_SECRET, "value": ",".join(sorted(secret_args or {}))}]
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
            url = f"{self._console}/deployment/model" + (f"/{quote(name, safe='')}" if exists else "")
            with open(package, "rb") as body:
                self._s.http.request(
                    "POST", url, what=f"deploying {name} to WMLA", data=body,
                    headers={"Content-Type": "application/octet-stream"},
                )
        if secret_args:
            self.update_profile(name, _merge_envs(self.get_profile(name), dict(secret_args)))
        return self.view(name)

    def _exists(self, name: str) -> bool:
        try:
            self._s.http.request("GET", self._model(name), what=f"reading deployment {name}")
        except NotFoundError:
            return False
        return True

    # -- read ----------------------------------------------------------------------------------

    def _view(self, model: dict[str, Any], instance: dict[str, Any] | None) -> dict[str, Any]:
        name = str(model.get("name"))
        state = str(model.get("state") or "unknown").lower()
        return {
            "name": name,
            "state": state,
            "status": (instance or {}).get("status") or ("STOPPED" if state != "started" else "UNKNOWN"),
            "service": "wmla",
            "url": self.url(name),
            "kernel_file": model.get("kernel_path") or "kernel.py",
            "custom_args": _attribute_names(model, ATTR_CUSTOM),
            "secret_args": _attribute_names(model, ATTR_SECRET),
            "deployed_at": model.get("create_time"),
            "updated_at": model.get("last_update_time"),
            "kernels": [_kernel(k) for k in (instance or {}).get("kernels") or []],
            "error": None,
            "warnings": [],
        }

    def list(self) -> list[dict[str, Any]]:
        models = self._s.http.json("GET", f"{self._console}/model", what="listing WMLA deployments")
        return [self._view(m, self._instance(str(m.get("name")))) for m in models or []]

    def _instance(self, name: str) -> dict[str, Any]:
        return self._s.http.json("GET", self._model(name, "/instance"),
                                 what=f"reading the kernels of deployment {name}")

    def view(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        what = f"reading deployment {name}"
        model = self._s.http.json("GET", self._model(name), what=what)
        out = self._view(model, self._instance(name))
        out["profile"] = _redacted(self.get_profile(name))
        return out

    def get_profile(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        return self._s.http.json(
            "GET", self._model(name, "/appprofile"), what=f"reading the profile of {name}"
        )

    def update_profile(self, name: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Lay `profile` over the current one (a caller may send only the policy) and put it
        back, as `dlim model viewprofile` + `updateprofile` did; WMLA refuses while started
        (ConflictError). Kernel environment variables merge by name, the new value winning."""
        check_deployment_name(name)
        current = self.get_profile(name)
        envs = {e["name"]: e.get("value", "")
                for source in (current, profile)
                for e in (source.get("kernel") or {}).get("envs") or []}
        merged = _merge_envs(overlay_profile(current, profile), envs)
        self._s.http.request(
            "PUT", self._model(name, "/appprofile"), what=f"updating the profile of {name}",
            json=merged,
        )
        return self.get_profile(name)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, name: str, *, secret_args: dict[str, str] | None = None) -> dict[str, Any]:
        check_deployment_name(name)
        if secret_args:
            self.update_profile(name, _merge_envs(self.get_profile(name), dict(secret_args)))
        self._s.http.request(
            "PUT", self._model(name, "/operation/start"), what=f"starting deployment {name}"
        )
        return self.view(name)

    def stop(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        self._s.http.request(
            "PUT", self._model(name, "/operation/stop"), what=f"stopping deployment {name}"
        )
        return self.view(name)

    def undeploy(self, name: str) -> None:
        check_deployment_name(name)
        self._s.http.request("DELETE", self._model(name), what=f"undeploying {name}")

    def infer(self, name: str, body: bytes) -> bytes:
        check_deployment_name(name)
        resp = self._s.http.request(
            "POST", self.url(name), what=f"inference on {name}", data=body,
            headers={"Content-Type": "application/json"}, ok=ANY_STATUS,
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
        return iter([
            f"kernel logs of {name} are kept by WMLA: open the WMLA console "
            f"({self._s.settings.wmla_url}) > Deployed models > {name} > Kernels, "
            "or read them on the cluster"
        ])


__all__ = ["CpdInference", "inject_custom_args"]
