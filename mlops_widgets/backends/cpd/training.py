"""Training jobs on WMLA's deep-learning service (`/platform/rest/deeplearning/v1/execs`) through
IBM's `DeepLearningImpactV1` client (ibm-wmla), as `dlicmd.py --exec-start` submitted them.

The submission folder travels as WMLA expects a model directory: a gzipped tar of the folder
(its name kept as the top folder) sent as the multipart field `file` with a name ending in
`.modelDir.tar`, the job's options as the `args` string (`--exec-start FRAMEWORK --numWorker N
--workerDeviceNum N --workerMemory 8g --model-dir NAME --model-main MAIN --cs-datastore-meta
type=fs,data_path=P --msd-env K=V ...`). The client's `create_exec` sends the file without a
name (WMLA would not see a directory), so that one request is built with the client's own
`prepare_request`; get, log, result and stop are the client's methods. The token goes as
`Authorization: Bearer`, as dlicmd sends it.

Secret job variables can only reach a WMLA job as `--msd-env` (the cluster keeps the args);
our side never writes them and every view shows them masked.
"""

from __future__ import annotations

import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.training_protocol import (
    DISTRIBUTED,
    JOB_ENDED,
    JOB_FAILED,
    JOB_FINISHED,
    JOB_KILLED,
    JOB_RUNNING,
    JOB_SUBMITTED,
    TrainingSpec,
)
from mlops_widgets.backends.views import JobView
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.secret_names import is_secret_name

MODEL_DIR_SUFFIX = ".modelDir.tar"
FOLLOW_POLL_S = 2.0
LOG_TAIL_LINES = 40
MASK = "********"
EXECS = "/platform/rest/deeplearning/v1/execs"
# WMLA exec states -> the protocol's: NEW, SUBMITTED, PENDING_* and LAUNCHING (and anything not
# recorded) are submitted, not yet known to run
STATES = {
    "RUNNING": JOB_RUNNING,
    "RECOVERING": JOB_RUNNING,
    "FINISHED": JOB_FINISHED,
    "ERROR": JOB_FAILED,
    "KILLED": JOB_KILLED,
}


def join_args(words: list[str]) -> str:
    """The args string as dlicmd sends it: words joined by spaces, nothing quoted."""
    for word in words:
        if not word or any(ch.isspace() for ch in word):
            raise MlopsError(
                f"training job option {word!r} is empty or holds whitespace: WMLA splits the "
                "job's options at spaces, so no option or value can contain one"
            )
    return " ".join(words)


def exec_args(spec: TrainingSpec, model_dir: str, secret_env: dict[str, str] | None = None) -> list[str]:
    """dlicmd's options for the spec, in its order and spelling."""
    args = ["--exec-start", spec.framework]
    if spec.framework in DISTRIBUTED or spec.workers > 1:
        args += ["--numWorker", str(spec.workers)]
    args += [
        "--workerDeviceNum",
        str(spec.devices_per_worker),
        "--workerMemory",
        spec.memory,
        "--model-dir",
        model_dir,
        "--model-main",
        spec.main,
    ]
    if spec.data_path:
        args += ["--cs-datastore-meta", f"type=fs,data_path={spec.data_path}"]
    env = dict(spec.env or {})
    if spec.data_volume:
        env.setdefault("VOLUME_DISPLAY_NAME", spec.data_volume)
    for key, value in [*env.items(), *(secret_env or {}).items()]:
        args += ["--msd-env", f"{key}={value}"]
    return [*args, *spec.args]


def parse_args(text: str) -> dict[str, Any]:
    """The options of an exec's args string (what we sent), secret --msd-env values masked."""
    words = (text or "").split()
    out: dict[str, Any] = {"env": {}, "script_args": []}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and i + 1 < len(words):
            value = words[i + 1]
            if word == "--msd-env":
                key, _, val = value.partition("=")
                out["env"][key] = MASK if is_secret_name(key) else val
            else:
                out[word[2:]] = value
            i += 2
        else:
            out["script_args"].append(word)
            i += 1
    return out


def masked_args(text: str) -> str:
    words = (text or "").split()
    return " ".join(
        f"{w.partition('=')[0]}={MASK}"
        if i and words[i - 1] == "--msd-env" and is_secret_name(w.partition("=")[0])
        else w
        for i, w in enumerate(words)
    )


class CpdTraining:
    """The `Training` protocol on WMLA's deep-learning execs."""

    def __init__(self, session: CpdSession) -> None:
        self.session = session
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlops_widgets.backends.cpd.contain import contained, import_sdk

            s = self.session.settings
            s.require("inference")
            import_sdk("wmla", s.ca_bundle)  # the package, its import-time side effects contained
            with contained(s.ca_bundle):
                from ibm_wmla.wmla_api_v1 import DeepLearningImpactV1
            from ibm_cloud_sdk_core.authenticators import Authenticator

            tokens = self.session.http.tokens

            class Bearer(Authenticator):
                def validate(self) -> None:
                    pass

                def authenticate(self, req: Any) -> None:
                    req["headers"]["Authorization"] = f"Bearer {tokens.get()}"

            def build() -> Any:
                client = DeepLearningImpactV1(authenticator=Bearer())
                client.set_service_url(s.wmla_url)
                client.set_http_config({"verify": s.verify, "timeout": (10, 300)})
                return client

            self._client = self.session.call(f"connecting to WMLA at {s.wmla_url}", build)
        return self._client

    def _view(self, batch: dict[str, Any]) -> JobView:
        opts = parse_args(batch.get("args", ""))
        state = STATES.get(str(batch.get("state", "")).upper(), JOB_SUBMITTED)
        data = opts.get("cs-datastore-meta", "")
        path = dict(p.split("=", 1) for p in data.split(",") if "=" in p).get("data_path") if data else None
        volume = opts["env"].get("VOLUME_DISPLAY_NAME")
        error = None
        if state in (JOB_FAILED, JOB_KILLED):
            error = "stopped by the user" if state == JOB_KILLED else f"the exec ended {batch.get('state')}"
        return JobView(
            id=batch["id"],
            backend="cpd",
            state=state,
            framework=opts.get("exec-start") or batch.get("framework"),
            main=opts.get("model-main"),
            workers=int(opts.get("numWorker") or batch.get("numWorker") or 1),
            devices_per_worker=int(opts.get("workerDeviceNum") or 0),
            memory=opts.get("workerMemory"),
            data={"volume": volume, "path": path} if path else None,
            created_at=batch.get("createTime"),
            error=error,
            output=f"{self.session.settings.wmla_url}/platform/rest/deeplearning/v1/execs/{batch['id']}/result",
            app_id=batch.get("appId"),
            args=masked_args(batch.get("args", "")),
        )

    def submit(
        self, folder: Path, spec: TrainingSpec, *, secret_env: dict[str, str] | None = None
    ) -> JobView:
        folder = Path(folder)
        spec.check(folder)
        args = join_args(exec_args(spec, folder.name, secret_env))
        with tempfile.TemporaryFile() as tar_file:
            with tarfile.open(fileobj=tar_file, mode="w:gz") as tar:
                tar.add(folder, arcname=folder.name)
            tar_file.seek(0)
            client = self.client

            def create() -> Any:
                tar_file.seek(0)
                request = client.prepare_request(
                    method="POST",
                    url=EXECS,
                    headers={"Accept": "application/json"},
                    params={"args": args},
                    files=[("file", (folder.name + MODEL_DIR_SUFFIX, tar_file, "application/octet-stream"))],
                )
                return client.send(request).get_result()

            created = self.session.call("submitting the training job to WMLA", create, idempotent=False)
        return self.get(created["id"])

    def list(self) -> list[JobView]:
        batches = self.session.call("listing WMLA execs", lambda: self.client.list_execs().get_result()) or []
        views = [self._view(b) for b in batches]
        return sorted(views, key=lambda v: v.created_at or "", reverse=True)

    def _batch(self, job_id: str) -> dict[str, Any]:
        try:
            return self.session.call(
                f"reading WMLA exec {job_id}", lambda: self.client.get_exec(job_id).get_result()
            )
        except NotFoundError:
            raise NotFoundError(f"no training job {job_id!r} on WMLA") from None

    def get(self, job_id: str) -> JobView:
        view = self._view(self._batch(job_id))
        if view.state == JOB_FAILED:  # what the job printed last says why
            tail = "\n".join(self._log(job_id).splitlines()[-LOG_TAIL_LINES:]) or None
            view = replace(view, error_log=tail)
        return view

    def _raw(self, job_id: str, part: str, accept: str) -> Any:
        """GET execs/{id}/{part} with the Accept header dlicmd sends (the client's own methods
        force application/json): the requests.Response."""
        client = self.client
        request = client.prepare_request(
            method="GET", url=f"{EXECS}/{quote(job_id, safe='')}/{part}", headers={"Accept": accept}
        )
        return client.send(request, stream=True).get_result()

    def _log(self, job_id: str) -> str:
        return self.session.call(
            f"reading the log of WMLA exec {job_id}", lambda: self._raw(job_id, "log", "text/plain").text
        )

    def logs(
        self, job_id: str, *, worker: int | None = None, tail: int | None = None, follow: bool = False
    ) -> Iterator[str]:
        if worker is not None:
            raise MlopsError(
                "WMLA's exec log holds every worker's output together: it cannot be read per worker"
            )
        text = self._log(job_id)
        lines = text.splitlines()
        yield from lines[-tail:] if tail else ([] if tail == 0 else lines)
        seen = len(text)
        while follow:
            ended = self.get(job_id).state in JOB_ENDED
            text = self._log(job_id)
            yield from text[seen:].splitlines()
            seen = len(text)
            if ended:
                return
            time.sleep(FOLLOW_POLL_S)

    def stop(self, job_id: str) -> JobView:
        view = self.get(job_id)
        if view.state in JOB_ENDED:
            return view
        self.session.call(
            f"stopping WMLA exec {job_id}",
            lambda: self.client.post_platform_rest_deeplearning_exec_stop(job_id),
            idempotent=False,
        )
        return self.get(job_id)

    def download_output(self, job_id: str, dest: Path) -> Path:
        from mlops_widgets.backends.archives import safe_unzip

        view = self.get(job_id)
        if view.state != JOB_FINISHED:
            raise ConflictError(
                f"training job {job_id} is {view.state}: only a finished job's output can be staged",
                hint=Hint(
                    "train.wait", "wait until the job has finished, or submit it again", {"job_id": job_id}
                ),
            )

        data = self.session.call(
            f"downloading the result of WMLA exec {job_id}",
            lambda: self._raw(job_id, "result", "application/octet-stream").content,
        )
        with tempfile.NamedTemporaryFile(suffix=".zip") as archive:
            archive.write(data)
            archive.flush()
            try:
                safe_unzip(Path(archive.name), dest)
            except MlopsError as exc:
                raise MlopsError(
                    f"the result of WMLA exec {job_id} is not a zip of its output: {exc}"
                ) from None
        return dest
