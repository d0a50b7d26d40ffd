"""Request bodies of a known length read straight into one buffer, with tornado's `read_into`.

tornado reads a body into a fresh chunk of `chunk_size` bytes per socket read (zeroed first),
appends that to its stream's read buffer and copies it out again as a bytes chunk for
`data_received`: three passes over every byte of a 13 MB image before it leaves for a kernel.
A handler that offers a buffer (`BodyInto.body_buffer`) gets a body that has a Content-Length
read by `IOStream.read_into` into that buffer instead: one pass, the socket's own copy.

tornado has no public hook for this: its connection's `_read_fixed_body` is replaced on each
request connection, and only when it has the signature this module was written against (else
tornado's own reading goes on, slower but alike; `tests/test_service_http.py` notices). All of
tornado's checks run first, as before: the token in `prepare` (a refused request never reaches
here: its connection is closed unread), the Content-Length against `max_body_size`, the body
timeout around the whole read.
"""

from __future__ import annotations

import ctypes
import inspect
from collections.abc import Callable
from typing import Any

from tornado.http1connection import HTTP1Connection

PREALLOCATE_UP_TO = 64 << 20  # larger bodies arrive in chunks: memory is taken as bytes arrive


def _expected_signature() -> bool:
    method = getattr(HTTP1Connection, "_read_fixed_body", None)
    return method is not None and list(inspect.signature(method).parameters) == [
        "self",
        "content_length",
        "delegate",
    ]


HOOKABLE = _expected_signature()


def read_body_into(conn: Any, offer: Callable[[int], bytearray]) -> None:
    """Make `conn` (the HTTP1Connection of a request whose headers are in and whose body is not
    yet read) read a body of known length into the buffer `offer(length)` gives."""
    if not HOOKABLE or not isinstance(conn, HTTP1Connection):
        return
    chunked = conn._read_fixed_body

    async def read_fixed_body(content_length: int, delegate: Any) -> None:
        if content_length > PREALLOCATE_UP_TO:
            await chunked(content_length, delegate)
            return
        view, got = memoryview(offer(content_length)), 0
        while got < content_length:
            got += await conn.stream.read_into(view[got:], partial=True)  # type: ignore[arg-type]

    conn._read_fixed_body = read_fixed_body  # type: ignore[method-assign]


def keep_freed_memory(keep: int = 64 << 20) -> None:
    """Each body is read into a fresh buffer, and glibc gives freed memory back to the system at
    once, so each request of many megabytes faulted its pages in anew (half of what a 13 MB body
    cost). Keep up to `keep` bytes freed in the heap for the next request. glibc only."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    # What glibc's own adaptive thresholds reach after freeing a 32 MB block, from the start.
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MB come from the heap
    mallopt(-1, keep)  # M_TRIM_THRESHOLD
