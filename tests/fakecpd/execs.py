"""Fake WMLA deep-learning execs (`/platform/rest/deeplearning/v1/execs`, bearer token as dlicmd
sends it): create (multipart `file` named `*.modelDir.tar`, a gzipped tar of the submission
folder, and the dlicmd options in `args`), list, get (IBM's `Batch` shape, plus the fields
dlicmd reads from a real cluster: createTime, framework, numWorker), log (text), result (a zip
of the job's output folder), stop.

States as recorded (tests/data/cluster_answers/wmla-exec-*.json): a new exec is SUBMITTED, then
RUNNING once its workers are launched, and ends FINISHED, ERROR (a worker failed; there is no
FAILED) or KILLED. The args string is split at spaces (dlicmd quotes nothing); the log is
answered as text/plain and the result as application/octet-stream, and, as a check on the
client, asked for with the Accept header dlicmd sends (anything else: 406).

An exec runs for real: each of its `--numWorker` workers is a local process running
`--model-main` in the unpacked folder, with RESULT_DIR, the `--msd-env` variables and, for
several workers, RANK and WORLD_SIZE; their output makes the exec's log.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from fakecpd.server import HttpError, Request, Response, Router, new_id

API = "/platform/rest/deeplearning/v1/execs"
BEARER = {"header": "authorization"}
MODEL_DIR_SUFFIX = ".modelDir.tar"


def _options(args: str) -> tuple[dict[str, str], dict[str, str]]:
    words = args.split()
    opts: dict[str, str] = {}
    env: dict[str, str] = {}
    i = 0
    while i < len(words) - 1:
        if words[i].startswith("--"):
            if words[i] == "--msd-env":
                key, _, value = words[i + 1].partition("=")
                env[key] = value
            else:
                opts[words[i][2:]] = words[i + 1]
            i += 2
        else:
            i += 1
    return opts, env


class Execs:
    def __init__(self, router: Router, workdir: Path | None = None) -> None:
        self.router = router
        self.root = Path(tempfile.mkdtemp(prefix="fake-execs-", dir=workdir))
        self.execs: dict[str, dict[str, Any]] = {}
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        r = router
        r.add("GET", API, self.list, **BEARER)
        r.add("POST", API, self.create, **BEARER)
        r.add("GET", API + r"/(?P<exec_id>[^/]+)", self.get, **BEARER)
        r.add("GET", API + r"/(?P<exec_id>[^/]+)/log", self.log, **BEARER)
        r.add("GET", API + r"/(?P<exec_id>[^/]+)/result", self.result, **BEARER)
        r.add("POST", API + r"/(?P<exec_id>[^/]+)/stop", self.stop, **BEARER)

    def _exec(self, exec_id: str) -> dict[str, Any]:
        if exec_id not in self.execs:
            raise HttpError(404, f"exec {exec_id} not found", "not_found")
        return self.execs[exec_id]

    def create(self, req: Request) -> dict[str, Any]:
        args = req.query.get("args")
        if not args:
            raise HttpError(400, "args is required")
        name, data = req.multipart().get("file", (None, b""))
        if not name or not name.endswith(MODEL_DIR_SUFFIX):
            raise HttpError(
                400, f"the model directory must be sent as a file named *{MODEL_DIR_SUFFIX}, got {name!r}"
            )
        opts, env = _options(args)
        for key in ("exec-start", "model-main", "model-dir"):
            if key not in opts:
                raise HttpError(400, f"--{key} is required")
        exec_id = f"{req.user}-{int(time.time() * 1000)}-{new_id()[:4]}"
        folder = self.root / exec_id
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            tar.extractall(folder, filter="data")
        workdir = folder / opts["model-dir"]
        if not (workdir / opts["model-main"]).is_file():
            raise HttpError(400, f"{opts['model-main']} is not in the model directory {opts['model-dir']}")
        output = folder / "result"
        output.mkdir()
        workers = int(opts.get("numWorker", "1"))
        log = open(folder / "exec.log", "ab")  # noqa: SIM115 (closed when the exec ends)
        procs = []
        for rank in range(workers):
            worker_env = {**os.environ, **env, "RESULT_DIR": str(output), "PYTHONUNBUFFERED": "1"}
            if workers > 1:
                worker_env.update(RANK=str(rank), WORLD_SIZE=str(workers))
            procs.append(
                subprocess.Popen(
                    [sys.executable, opts["model-main"]],
                    cwd=workdir,
                    env=worker_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        log.close()
        batch = {
            "id": exec_id,
            "userName": req.user,
            "executionUserName": req.user,
            "args": args,
            "sigName": "dli-sig",
            "sigId": new_id(),
            "submissionId": f"driver-{new_id()[:8]}",
            "appId": f"app-{new_id()[:8]}",
            "masterURL": "spark://fake-master:7077",
            "state": "SUBMITTED",
            "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "framework": opts["exec-start"],
            "numWorker": workers,
            "appName": opts["model-main"],
        }
        with self.router.lock:
            self.execs[exec_id] = batch
            self.procs[exec_id] = procs
        answer = dict(batch)
        batch["state"] = "RUNNING"  # the workers are launched
        threading.Thread(target=self._watch, args=(exec_id,), daemon=True).start()
        return answer

    def _watch(self, exec_id: str) -> None:
        codes = [p.wait() for p in self.procs[exec_id]]
        with self.router.lock:
            batch = self.execs[exec_id]
            if batch["state"] == "RUNNING":
                batch["state"] = "FINISHED" if all(c == 0 for c in codes) else "ERROR"

    def list(self, req: Request) -> list[dict[str, Any]]:
        return list(self.execs.values())

    def get(self, req: Request, exec_id: str) -> dict[str, Any]:
        return self._exec(exec_id)

    @staticmethod
    def _accept(req: Request, wanted: str) -> None:
        if req.headers.get("accept") != wanted:
            raise HttpError(406, f"dlicmd asks {wanted}, not {req.headers.get('accept')!r}", "not_acceptable")

    def log(self, req: Request, exec_id: str) -> Response:
        self._exec(exec_id)
        self._accept(req, "text/plain")
        return Response(200, (self.root / exec_id / "exec.log").read_bytes(), {"Content-Type": "text/plain"})

    def result(self, req: Request, exec_id: str) -> Response:
        self._exec(exec_id)
        self._accept(req, "application/octet-stream")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for path in sorted((self.root / exec_id / "result").rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(self.root / exec_id / "result").as_posix())
        return Response(
            200,
            buf.getvalue(),
            {
                "Content-Type": "application/octet-stream",
                "Content-Disposition": "attachment; filename=train_result.zip",
            },
        )

    def stop(self, req: Request, exec_id: str) -> Response:
        batch = self._exec(exec_id)
        with self.router.lock:
            if batch["state"] == "RUNNING":
                batch["state"] = "KILLED"
        self.stop_exec(exec_id)
        return Response(200, f"Stop exec {exec_id} succeed".encode(), {"Content-Type": "text/plain"})

    def stop_exec(self, exec_id: str) -> None:
        for proc in self.procs.get(exec_id, []):
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
            proc.wait()

    def stop_all(self) -> None:
        for exec_id in list(self.procs):
            self.stop_exec(exec_id)
