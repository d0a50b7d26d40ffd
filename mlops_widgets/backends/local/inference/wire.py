"""The frames between the service and its kernel processes (over an inherited socket pair).

A frame is a 4-byte big-endian header length, a JSON header carrying `sizes`, then that many raw
blobs (request and response bodies travel unencoded). A blob may be one buffer or the chunks a
request body arrived in: large frames go out with scatter/gather `sendmsg`, so a body of many
megabytes is never joined or copied on its way to the kernel. The kernel side is the same few
lines in `kernel_path/redhareapi.py`, which cannot import this package.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO

_LEN = struct.Struct("!I")
_JOIN_BELOW = 64 << 10  # smaller frames are joined and sent in one call
_IOV_MAX = 512  # buffers per sendmsg call (the system allows 1024)

Frame = tuple[dict[str, Any], list[bytes]]
Blob = bytes | Sequence[bytes]  # one buffer, or the chunks of a body in order


def _chunks(blob: Blob) -> Sequence[bytes]:
    return (blob,) if isinstance(blob, bytes | bytearray | memoryview) else blob


def send(sock: socket.socket, header: dict[str, Any], blobs: list[Blob] | None = None) -> None:
    chunked = [_chunks(b) for b in blobs or []]
    raw = json.dumps({**header, "sizes": [sum(len(c) for c in b) for b in chunked]}).encode()
    buffers = [_LEN.pack(len(raw)), raw, *(c for b in chunked for c in b if len(c))]
    if sum(len(b) for b in buffers) < _JOIN_BELOW:
        sock.sendall(b"".join(buffers))
        return
    views = [memoryview(b) for b in buffers]
    while views:
        sent = sock.sendmsg(views[:_IOV_MAX])
        while sent:
            if sent >= len(views[0]):
                sent -= len(views.pop(0))
            else:
                views[0], sent = views[0][sent:], 0
        while views and not len(views[0]):
            views.pop(0)


def recv(reader: BinaryIO) -> Frame | None:
    """The next frame, or None at end of stream (the kernel exited)."""
    prefix = reader.read(_LEN.size)
    if len(prefix) < _LEN.size:
        return None
    header = json.loads(reader.read(_LEN.unpack(prefix)[0]))
    blobs = [reader.read(n) for n in header.get("sizes", [])]
    if any(len(b) != n for b, n in zip(blobs, header.get("sizes", []), strict=True)):
        return None
    return header, blobs
