"""Helpers shared by several test modules (test modules import from here, never from each other).

Grouped by the part they exercise: deployments on the local inference service, template runs,
secrets, staged submissions, a workspace on a small file system, monitoring entries, Cloud Pak
for Data submissions.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from PIL import Image

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import LocalInference
from mlops_widgets.backends.views import DeploymentView
from mlops_widgets.config import load_config, new_entry, validate_entry
from mlops_widgets.masking import secret_forms
from mlops_widgets.monitors.definitions import GENERIC, SEGMENTATION
from mlops_widgets.ops import space

# --- deployments on the local inference service ------------------------------------------------------

ECHO_KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import json, os, sys, time

class EchoKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        self.description = json.loads(kernel_context.get_model_description())
        self.instance = kernel_context.get_instance_id()
        print("kernel started", self.instance)

    def on_task_invoke(self, task_context):
        batch = []
        while task_context is not None:
            batch.append(task_context)
            task_context = task_context.next()
        for task in batch:
            req = json.loads(task.get_input_data())
            do = req.get("do")
            if do == "sleep":
                time.sleep(req["seconds"])
            elif do == "gate":
                while not os.path.exists(req["gate"]):
                    time.sleep(0.005)
            elif do == "raise":
                raise ValueError("bad input: " + req.get("why", ""))
            elif do == "die":
                os._exit(3)
            elif do == "silent":
                continue
            elif do == "print":
                print("stdout says", req["text"])
                Kernel.log_info("stderr says " + req["text"])
            task.set_output_data(json.dumps({
                "pod": os.environ["MSD_POD_NAME"],
                "pid": os.getpid(),
                "batch": len(batch),
                "input": req,
                "env": {k: os.environ.get(k) for k in req.get("env", [])},
                "cwd": os.getcwd(),
                "model_path": self.description["model_path"],
                "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
            }))

    def on_kernel_shutdown(self):
        print("kernel shutdown", self.instance, flush=True)

if __name__ == '__main__':
    EchoKernel().run()
"""


def make_folder(root: Path, kernel: str = ECHO_KERNEL, *, name: str = "dep", **model: Any) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "kernel.py").write_text(kernel)
    (folder / "README.md").write_text("test kernel\n")
    (folder / "model.json").write_text(json.dumps({"name": name, "kernel_path": "kernel.py", **model}))
    return folder


def wait_for(check: Callable[[], Any], timeout: float = 120.0, what: str = "condition") -> Any:
    """Poll until `check` is true; the timeout only bounds a failing test (a loaded machine is slow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def wait_status(inf: LocalInference, name: str, *statuses: str, timeout: float = 120.0) -> DeploymentView:
    seen: list[DeploymentView] = []

    def check() -> DeploymentView | None:
        seen.append(inf.view(name))
        return seen[-1] if seen[-1].status in statuses else None

    try:
        return wait_for(check, timeout, f"{name} to be {statuses}")
    except AssertionError:
        last = seen[-1] if seen else None
        raise AssertionError(
            f"{name} stayed {last and last.status}: {last and last.error}\n{log_text(inf, name)}"
        ) from None


def log_text(inf: LocalInference, name: str = "dep") -> str:
    return "\n".join(inf.logs(name))


def deploy_started(inf: LocalInference, folder: Path, name: str = "dep", **policy: Any) -> DeploymentView:
    inf.deploy(name, folder)
    if policy:
        inf.update_profile(name, {"policy": policy})
    inf.start(name)
    return wait_status(inf, name, "IDLE")


def ask(inf: LocalInference, name: str = "dep", **req: Any) -> dict[str, Any]:
    return json.loads(inf.infer(name, json.dumps(req).encode()))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped meanwhile (ESRCH while reading /proc)
        return True


# --- processes that try to outlive their owner ---------------------------------------------------

# Python source defining `escape(mb=0, shm="")`, run inside a kernel, a template run or a training
# job: a grandchild that leaves the session (setsid), whose parent exits, with an empty
# environment; it holds `mb` MB and, with `shm`, a file it created in /dev/shm open. Returns
# its pid once it runs.
ESCAPE = """
def escape(mb=0, shm=""):
    import os, sys
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if shm:
                fd = os.open(shm, os.O_CREAT | os.O_RDWR, 0o600)
                os.write(fd, b"x" * 65536)
                os.set_inheritable(fd, True)
            os.write(w, str(os.getpid()).encode())
            if mb:
                code = "import time; hold = b'x' * (%d << 20); time.sleep(3000)" % mb
                os.execve(sys.executable, [sys.executable, "-c", code], {})
            os.execve("/bin/sleep", ["sleep", "3000"], {})
        os._exit(0)
    os.close(w)
    pid = int(os.read(r, 64))
    os.close(r)
    return pid
"""


def shm_path(tag: str) -> Path:
    """A /dev/shm file name of this test run (skips where there is no /dev/shm)."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm on this machine")
    return Path("/dev/shm") / f"mlops-test-{tag}-{os.getpid()}-{time.monotonic_ns()}"


# --- template runs -----------------------------------------------------------------------------------

PARAMS = """from typing import Literal
import os

count = 3  # how many
ratio = 0.5  # a fraction
name = "demo"  # the name
flag = False  # switch it on
tags = ["a", "b"]  # labels
# settings of the thing,
# over two lines
settings = {
    "a": 1,
}
maybe: str | None = None  # optional text
where: str = os.getcwd()  # a default that is code
mode: Literal["fast", "slow"] = "fast"  # how to run
anything = None  # no annotation: any value
api_key = ""  # the key, secret by its name
login = ""  # secret: the login, secret by its comment
"""


def make_template(path: Path, params: str = PARAMS, cells: list[str] | None = None) -> Path:
    """A template notebook: a title, the parameters cell, then one step per code string."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}: a test template"), p]
    for i, src in enumerate(cells or []):
        nb.cells += [nbformat.v4.new_markdown_cell(f"## Step {i + 1}"), nbformat.v4.new_code_cell(src)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# --- secrets -----------------------------------------------------------------------------------------


def written_forms(value: str) -> set[str]:
    """The forms of `value` users' code really writes, listed here independently of the masker:
    percent-encoded (Python, `requests`, JavaScript's encodeURIComponent), base64 of it and of
    `user:value` (basic auth), JSON (either case of hex), repr, ascii(), a bytes repr, HTML
    (named and numeric entities), each for the value as typed and NFC/NFD-normalised."""
    import base64
    import html
    import re
    import unicodedata
    from urllib.parse import quote, quote_plus

    import requests

    forms: set[str] = set()
    for text in {value, unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)}:
        raw = text.encode()
        forms |= {text, quote(text, safe=""), quote(text), quote_plus(text), quote(text, safe="!*'()~")}
        forms.add(requests.utils.requote_uri(text))
        for data in (raw, b"admin:" + raw, b"user:" + raw):
            forms |= {base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode().rstrip("=")}
        json_text = json.dumps(text)[1:-1]
        forms |= {json_text, re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), json_text)}
        forms |= {repr(text)[1:-1], ascii(text)[1:-1], repr(raw)[2:-1]}
        escaped = html.escape(text)
        forms |= {
            escaped,
            escaped.replace("&#x27;", "&#39;"),
            escaped.encode("ascii", "xmlcharrefreplace").decode(),
        }
    return forms


def byte_leaks(root: Path, *values: str) -> list[str]:
    """Every file under `root` (the database and its WAL included) holding any form of any value:
    those the masker knows, and those users' code writes (`written_forms`)."""
    forms = {f.encode() for v in values for f in secret_forms(v) | written_forms(v)}
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {f!r}" for f in forms if f in data]
    return found


# --- staged submissions (the packaged example) -------------------------------------------------------


def example_entry(example_paths: Any) -> dict[str, Any]:
    (e,) = load_config(example_paths.config).entries.values()
    e = copy.deepcopy(e)
    e["wmla_deployment"]["resource_configs"].update(kernel_min=1, kernel_max=1)
    return e


def stage(backend: Backend, example_paths: Any, dependency: Path | None = None) -> str:
    staged = space.stage(
        backend,
        example_paths.model,
        dependency or example_paths.deployment,
        example_entry(example_paths),
        on_clash="new",
    )
    return staged["model_asset_id"]


# --- a workspace on a small real file system (tmpfs in a private mount namespace) --------------------

MLOPS = f"{shlex.quote(sys.executable)} -c 'from mlops_widgets.cli import main; main()'"


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode == 0


needs_unshare = pytest.mark.skipif(not _unshare_works(), reason="needs user namespaces (unshare -Urm)")


def in_tmpfs(tmp_path: Path, size: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) with $M a fresh tmpfs of `size` and $MLOPS the command."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    full = f"set -u; M={mnt}; mount -t tmpfs -o size={size} tmpfs $M || exit 99; {script}"
    env = {"PATH": os.environ["PATH"], "MLOPS": MLOPS}
    return subprocess.run(
        ["unshare", "-Urm", "sh", "-c", full], capture_output=True, text=True, env=env, timeout=120
    )


# --- monitoring entries ------------------------------------------------------------------------------

VOLUME = "vol"


ASSET = "asset-1"


def monitors_settings(**overrides: dict[str, Any]) -> dict[str, Any]:
    common = {"dir_gt": "eval/gt", "dir_pred": "eval/pred", "volume_display_name": VOLUME, "most_recent": 7}
    out = {
        "segmentation_metrics": {**common, "thresholds": SEGMENTATION.default_thresholds()},
        "generic_metrics": {**common, "thresholds": GENERIC.default_thresholds()},
    }
    for k, v in overrides.items():
        out[k] = v
    return out


def add_entry(
    backend: Backend, name: str = "demo", monitors: dict[str, Any] | None = None, key: str = ASSET
) -> str:
    entry = new_entry()
    entry["wmla_deployment"]["deployment_name"] = name
    entry["wmla_deployment"]["deployment_url"] = f"http://127.0.0.1:1/dlim/v1/inference/{name}"
    entry["openscale_custom_metric_provider"] = monitors_settings() if monitors is None else monitors
    entry, _ = validate_entry(entry)
    space.add_entries(backend, {key: entry})
    return key


def write_masks(folder: Path, n: int, *, seed: int, quality: float = 0.8, size: int = 24) -> None:
    """n `*_Seg.png` pairs under folder/gt and folder/pred; `quality` = share of pixels agreeing."""
    rng = np.random.default_rng(seed)
    for sub in ("gt", "pred"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        gt = np.zeros((size, size, 3), np.uint8)
        gt[..., 0] = (rng.random((size, size)) < 0.4) * 255
        gt[..., 2] = (rng.random((size, size)) < 0.3) * 255
        flip = rng.random((size, size, 3)) > quality
        pred = np.where(flip, 255 - gt, gt).astype(np.uint8)
        Image.fromarray(gt).save(folder / "gt" / f"img{i}_Seg.png")
        Image.fromarray(pred).save(folder / "pred" / f"img{i}_Seg.png")


# --- Cloud Pak for Data submissions ------------------------------------------------------------------


def cpd_submission(tmp_path: Path, name: str = "seg") -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "kernel.py").write_text(
        "from __future__ import annotations\n\nimport redhareapiversion\nprint(CPD_USERNAME)\n"
    )
    (folder / "README.md").write_text("# seg\n")
    (folder / "weights").mkdir()
    (folder / "weights" / "w.bin").write_bytes(b"\x01" * 64)
    (folder / "model.json").write_text(
        json.dumps(
            {
                "name": name,
                "kernel_path": "kernel.py",
                "readme": "README.md",
                "tag": "test",
                "weight_path": "./",
                "runtime": "dlipy3",
                "framework": "PyTorch",
                "schema_version": "1",
                "mk_environments": [{"name": "SPACE_ID", "value": "x"}],
            }
        )
    )
    return folder


def submit_args(script: Path, *more: str) -> list[str]:
    """`mlops train submit` of a job whose one file, `script`, is its main file; `more` after."""
    return [
        "train",
        "submit",
        "-p",
        "files",
        json.dumps([str(script)]),
        "-p",
        "main_file",
        script.name,
        *more,
    ]
