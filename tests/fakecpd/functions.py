"""Running a deployed WML Python function the way WML would: its own process, a bare runtime
environment (no credentials, no cluster URL: a deployment has none, but what the cluster's
administrator set on the runtime, `runtime_env`), `score(payload)` called once, or
`score(payload, token)` with the caller's bearer token when score takes two arguments and the
platform hands one (IBM docs, "Writing deployable Python functions"; Cloud Pak for Data 4.x
functions get one argument: token None)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

RUNNER = r"""
import importlib.util, inspect, json, os, sys
spec = importlib.util.spec_from_file_location("deployed_function", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if not callable(getattr(module, "score", None)):
    raise SystemExit("the function file has no score()")
request = json.load(sys.stdin)
if request["token"] is not None and len(inspect.signature(module.score).parameters) >= 2:
    answer = module.score(request["payload"], request["token"])
else:
    answer = module.score(request["payload"])
sys.stdout.write("\n@@RESULT@@" + json.dumps(answer) + "\n")
"""
TIMEOUT_S = 120


def run_function(
    code: bytes,
    payload: dict[str, Any],
    token: str | None,
    python: str,
    timeout: float = TIMEOUT_S,
    runtime_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "MLOPS_CPD_RETRY_DELAY": "0.05",
        **(runtime_env or {}),
    }
    with tempfile.TemporaryDirectory(prefix="fake-wml-function-") as tmp:
        path = Path(tmp) / "function.py"
        path.write_bytes(code)
        proc = subprocess.run(
            [python, "-c", RUNNER, str(path)],
            input=json.dumps({"payload": payload, "token": token}),
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=timeout,
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("@@RESULT@@"):
            return json.loads(line.removeprefix("@@RESULT@@"))
    raise RuntimeError(f"the function failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
