"""Runtimes of the local inference service: named Python interpreters that kernels run on.

A deployment's `model.json` `runtime` names one, as on WMLA EDI. "dlipy3" (EDI's default) is
always there: the service's own interpreter, with mlops-widgets' packages, unless the user bound
it to an interpreter of theirs (`mlops runtime add dlipy3 --python PATH`, undone by `runtime
delete dlipy3`), so the team's and IBM's `model.json` files run on a Python with their framework
without an edit. Any other is a Python the user added (a virtual environment, a conda
environment, a system Python) holding the kernel's framework; kernels on an interpreter other
than the service's get the `redhareapi` shim and nothing of mlops-widgets.

    <workspace>/inference/runtimes.json    {"NAME": {"python": PATH, "version": "3.11.7", "added_at": ...}}
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace, atomic_write

SERVICE_RUNTIME = "dlipy3"
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_PYTHON = (3, 8)
PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
PROBE_TIMEOUT = 30.0


class Runtimes:
    """The workspace's runtimes, kept in one JSON file under the inference folder."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.path = workspace.root / "inference" / "runtimes.json"

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise MlopsError(f"{self.path} is not readable JSON: {exc}") from None
        return data if isinstance(data, dict) else {}

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The runtimes, changed in place by the caller and written back whole, one writer at a time."""
        self.workspace.path("inference", "runtimes.json")  # the workspace opened (marked) first
        lock = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            atomic_write(self.path, json.dumps(data, indent=2))
            os.chmod(self.path, 0o600)
        finally:
            os.close(lock)

    def list(self) -> list[dict[str, Any]]:
        """Every runtime, dlipy3 first (the service's own interpreter unless bound to another)."""
        data = self._read()
        bound = data.pop(SERVICE_RUNTIME, None)
        own = (
            {"name": SERVICE_RUNTIME, **bound, "builtin": False}
            if bound
            else {
                "name": SERVICE_RUNTIME,
                "python": sys.executable,
                "version": ".".join(map(str, sys.version_info[:3])),
                "added_at": None,
                "builtin": True,
            }
        )
        added = [{"name": n, **r, "builtin": False} for n, r in sorted(data.items())]
        return [own, *added]

    def python(self, name: str | None) -> str:
        """The interpreter of runtime `name` (None or empty: dlipy3's)."""
        name = name or SERVICE_RUNTIME
        found = self._read().get(name)
        if found is None and name == SERVICE_RUNTIME:
            return sys.executable
        if found is None:
            known = ", ".join(r["name"] for r in self.list())
            raise NotFoundError(
                f"model.json names the runtime {name!r}, which this workspace does not have (it has {known})",
                hint=Hint(
                    "runtime.add",
                    "add a runtime of that name, or name one that exists in model.json",
                    {"name": name},
                ),
            )
        return str(found["python"])

    def add(self, name: str, python: str | os.PathLike[str]) -> dict[str, Any]:
        """Add runtime `name` on the interpreter at `python` (checked to run Python 3.8+)."""
        if not NAME_RULE.fullmatch(name):
            raise MlopsError(
                f"runtime name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        path = (
            Path(python).expanduser().absolute()
        )  # not resolved: a venv's python is a link that must stay one
        version = probe(path)
        with self._locked() as data:
            if name in data:
                raise ConflictError(
                    f"runtime {name} already exists (on {data[name]['python']})",
                    hint=Hint("runtime.delete", "delete it first to point it elsewhere", {"name": name}),
                )
            data[name] = {
                "python": str(path),
                "version": version,
                "added_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            }
            return {"name": name, **data[name], "builtin": False}

    def delete(self, name: str) -> None:
        """Delete runtime `name`; for dlipy3, its binding (it is the service's own again)."""
        with self._locked() as data:
            if data.pop(name, None) is None:
                if name == SERVICE_RUNTIME:
                    raise ConflictError(
                        f"runtime {SERVICE_RUNTIME} is the service's own interpreter and cannot be deleted"
                    )
                raise NotFoundError(f"no runtime named {name!r}")


def probe(python: Path) -> str:
    """The version of the Python at `python`, refused unless it runs and is 3.8 or later."""
    if not python.is_file() or not os.access(python, os.X_OK):
        raise NotFoundError(f"{python} is not an executable file")
    try:
        out = subprocess.run(
            [str(python), "-c", PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MlopsError(f"{python} could not be run: {exc}") from None
    version = out.stdout.strip()
    if out.returncode != 0 or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise MlopsError(
            f"{python} is not a Python interpreter (it answered: {(out.stderr or out.stdout).strip()[:200]})"
        )
    if tuple(int(p) for p in version.split(".")[:2]) < MIN_PYTHON:
        raise MlopsError(
            f"{python} is Python {version}; kernels need Python {'.'.join(map(str, MIN_PYTHON))} or later"
        )
    return version
