"""The helper modules the original team's kernels import: our own code, the original's API.

`storage_volume_utils`, `cpd_utils`, `wmla_edi_utils` and `wml_sdk_utils` are copied into every
deployment folder (unless the dependency or the space brings its own) and imported there as
top-level modules by the kernel, so they are files of this folder rather than members of this
package: each needs only the standard library on the local backend (a kernel may run on another
interpreter) and `requests` / IBM's WML SDK on Cloud Pak for Data, as the originals did.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES: tuple[str, ...] = (
    "wmla_edi_utils.py",
    "storage_volume_utils.py",
    "cpd_utils.py",
    "wml_sdk_utils.py",
)


def path(module: str) -> Path:
    """The file of one helper module, e.g. path("cpd_utils.py")."""
    if module not in MODULES:
        raise KeyError(module)
    return HERE / module
