"""The frames between the service and its kernel processes (over an inherited socket pair).

A frame is a 4-byte big-endian header length, a JSON header carrying `sizes`, then that many raw
blobs (request and response bodies travel unencoded). The kernel side is the same few lines in
`kernel_path/redhareapi.py`, which cannot import this package.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any, BinaryIO

_LEN = struct.Struct("!I")

Frame = tuple[dict[str, Any], list[bytes]]


def send(sock: socket.socket, header: dict[str, Any], blobs: list[bytes] | None = None) -> None:
    blobs = blobs or []
    raw = json.dumps({**header, "sizes": [len(b) for b in blobs]}).encode()
    sock.sendall(b"".join([_LEN.pack(len(raw)), raw, *blobs]))


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
