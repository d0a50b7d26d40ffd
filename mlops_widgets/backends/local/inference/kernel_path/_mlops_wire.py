"""The frames between the local inference service and its kernel processes (over an inherited
socket pair), one implementation for both ends.

A frame is a 4-byte big-endian header length, a JSON header carrying `sizes`, then that many raw
blobs (request and response bodies travel unencoded). A blob may be one buffer or the chunks a
request body arrived in: large frames go out with scatter/gather `sendmsg`, so a body (or a
kernel's output image) of many megabytes is never joined or copied on its way.

Kernel processes import this file from their `kernel_path` folder (any runtime, Python 3.8 and
later, standard library only); the service imports it from its package.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # annotations only: the aliases' syntax needs Python 3.10
    import socket
    from collections.abc import Sequence

    Buffer = bytes | bytearray | memoryview
    Blob = Buffer | Sequence[bytes]  # one buffer, or a body's chunks
    Frame = tuple[dict[str, Any], list[bytes]]

_LEN = struct.Struct("!I")
_BUFFERS = (bytes, bytearray, memoryview)
_JOIN_BELOW = 64 << 10  # smaller frames are joined and sent in one call
_IOV_MAX = 512  # buffers per sendmsg call (the system allows 1024)


def _chunks(blob: Blob) -> Sequence[Buffer]:
    return (blob,) if isinstance(blob, _BUFFERS) else blob


def send(sock: socket.socket, header: dict[str, Any], blobs: list[Blob] | None = None) -> None:
    """Send one frame; every buffer holds bytes (len() is its size in bytes)."""
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
    """The next frame, or None at end of stream (the other end exited or closed the channel)."""
    prefix = reader.read(_LEN.size)
    if len(prefix) < _LEN.size:
        return None
    header = json.loads(reader.read(_LEN.unpack(prefix)[0]))
    sizes = header.get("sizes", [])
    blobs = [reader.read(n) for n in sizes]
    if any(len(b) != n for b, n in zip(blobs, sizes)):  # noqa: B905 (runtimes may predate 3.10)
        return None
    return header, blobs
