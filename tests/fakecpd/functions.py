"""Running a deployed WML Python function the way WML would: its own process, its own runtime
environment (the cluster URL and a token, as CPD runtimes have), `score(payload)` called once."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

RUNNER = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("deployed_function", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if not callable(getattr(module, "score", None)):
    raise SystemExit("the function file has no score()")
answer = module.score(json.load(sys.stdin))
sys.stdout.write("\n@@RESULT@@" + json.dumps(answer) + "\n")
"""
TIMEOUT_S = 120


def run_function(code: bytes, payload: dict[str, Any], token: str | None, fake: Any,
                 python: str) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "RUNTIME_ENV_APSX_URL": fake.base_url,
        "USER_ACCESS_TOKEN": token or "",
        "MLOPS_CPD_CA_BUNDLE": str(fake.certs.ca),
        "MLOPS_CPD_RETRY_DELAY": "0.05",
    }
    with tempfile.TemporaryDirectory(prefix="fake-wml-function-") as tmp:
        path = Path(tmp) / "function.py"
        path.write_bytes(code)
        proc = subprocess.run(
            [python, "-c", RUNNER, str(path)], input=json.dumps(payload), capture_output=True,
            text=True, env=env, cwd=tmp, timeout=TIMEOUT_S,
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("@@RESULT@@"):
            return json.loads(line.removeprefix("@@RESULT@@"))
    raise RuntimeError(f"the function failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
