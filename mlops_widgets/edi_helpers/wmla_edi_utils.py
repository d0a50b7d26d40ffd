"""wmla_edi_utils: a kernel's log mirrored on the storage volume, and images as request strings.

The original team's API: `log(message, path_source, ...)` writes each message to the kernel's
log (`Kernel.log_info`), appends it with a UTC timestamp to a local file and mirrors that file on
the storage volume (same relative path); `serialize_image` / `deserialize_image` turn a PIL image
into a base64 PNG string and back into bytes.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone
from io import BytesIO

import storage_volume_utils as sv


def _kernel_log(level: str, text: str) -> None:
    try:
        from redhareapi import Kernel
    except ImportError:  # outside a kernel
        print(text)
        return
    getattr(Kernel, level)(text)


def log(message, path_source, save_log_to_volume=True, access_token=None, volume_display_name=None):
    """Log `message` (a string or a list of them) to the kernel log and to the file
    `path_source` (a folder gets `<MSD_POD_NAME>.log`), mirrored on the storage volume unless
    `save_log_to_volume` is False. A failed mirror is reported in the kernel log, not raised:
    logging never fails a request."""
    lines = list(message) if isinstance(message, (list, tuple)) else [message]
    for line in lines:
        _kernel_log("log_info", str(line))
    path = str(path_source)
    if os.path.isdir(path) or path.endswith("/"):
        path = os.path.join(path, os.getenv("MSD_POD_NAME", "edi_inference") + ".log")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("[%Y-%m-%d %H:%M:%S%z]")  # noqa: UP017  (any Python 3)
    with open(path, "a") as fh:
        fh.writelines(f"{x}\n" for x in [stamp, *lines, ""])
    if save_log_to_volume:
        try:
            sv.upload(path, access_token=access_token, volume_display_name=volume_display_name)
        except Exception as exc:
            _kernel_log("log_warn", f"could not mirror the log {path} on the storage volume: {exc}")
    return path


def serialize_image(img) -> str:
    """A PIL image as a base64 PNG string (for a JSON request or response)."""
    buffer = BytesIO()
    img.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("utf-8")


def deserialize_image(bs: str) -> BytesIO:
    """The bytes of a base64 image string, ready for `PIL.Image.open`."""
    return BytesIO(base64.b64decode(bs))
