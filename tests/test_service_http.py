"""The local service's HTTP layer: tokens, bounded connections and threads, idle timeouts,
400 for malformed requests, POSTs never sent twice, and bounded, contained tar uploads."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import select
import signal
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ECHO_KERNEL, deploy_started, gone, make_folder, wait_for

from mlops_widgets.backends.archives import safe_untar
from mlops_widgets.backends.local.inference import (
    LocalInference,
    bodies,
    service_info,
    start_service,
    stop_service,
)
from mlops_widgets.backends.local.inference.client import DroppedConnection
from mlops_widgets.backends.packing import ArchiveLimits
from mlops_widgets.errors import MlopsError
from mlops_widgets.workspace import Workspace

COUNTING_KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import json, os, time

class CountingKernel(Kernel):
    def on_task_invoke(self, task_context):
        req = json.loads(task_context.get_input_data())
        with open(req["runs"], "a") as out:
            out.write("ran\\n")
        while not os.path.exists(req["gate"]):
            time.sleep(0.01)
        task_context.set_output_data("{}")

if __name__ == '__main__':
    CountingKernel().run()
"""


@pytest.fixture
def service(workspace: Workspace) -> Iterator[dict[str, Any]]:
    yield start_service(workspace)
    stop_service(workspace)


def answered(out: bytes) -> bool:
    """Whether `out` holds a whole answer (its head and Content-Length bytes of body)."""
    head, sep, body = out.partition(b"\r\n\r\n")
    length = [
        int(v)
        for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")[1:])
        if k.strip().lower() == b"content-length"
    ]
    return bool(sep) and bool(length) and len(body) >= length[0]


def raw(info: dict[str, Any], data: bytes) -> bytes:
    """Send bytes as they are and read the answer until the service closes or answers once."""
    with socket.create_connection((info["host"], info["port"]), timeout=60) as sock:
        sock.sendall(data)
        out = b""
        while (chunk := sock.recv(65536)) and not answered(out := out + chunk):
            pass
        return out


def request(
    info: dict[str, Any], method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, Any]:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    out = raw(info, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    head, _, data = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(data) if data else None


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_the_token_is_accepted_in_each_of_edis_headers(service: dict[str, Any]) -> None:
    token = service["token"]
    for header in ({"Authorization": f"Bearer {token}"}, {"X-Auth-Token": token}, {"X-User-Token": token}):
        assert request(service, "GET", "/dlim/v1/model", header) == (200, [])
    for header in ({}, {"Authorization": token}, {"X-Auth-Token": "wrong"}, {"Authorization": "Bearer "}):
        status, body = request(service, "GET", "/dlim/v1/model", header)
        assert status == 401 and "service.json" in body["error"]


def test_malformed_requests_get_400_and_leave_no_traceback(
    service: dict[str, Any], workspace: Workspace
) -> None:
    token = service["token"]
    for bad in (
        f"POST /dlim/v1/inference/dep HTTP/1.1\r\nX-Auth-Token: {token}\r\nContent-Length: abc\r\n\r\n",
        f"POST /dlim/v1/inference/dep HTTP/1.1\r\nX-Auth-Token: {token}\r\nContent-Length: -5\r\n\r\n",
        "GARBAGE\r\n\r\n",
    ):
        assert raw(service, bad.encode()).startswith(b"HTTP/1.1 400"), bad
    status, body = request(
        service, "PUT", "/dlim/v1/model/dep/appprofile", {"X-Auth-Token": token}, b"{not json"
    )
    assert status == 400 and "not valid JSON" in body["error"]
    assert request(service, "GET", "/dlim/v1/model", {"X-Auth-Token": token}) == (200, [])  # still serves
    log = (workspace.root / "inference" / "service.log").read_text()
    assert "Traceback" not in log


def test_idle_connections_are_closed_after_the_idle_timeout(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_SERVICE_IDLE_TIMEOUT", "1")
    info = start_service(workspace)
    with socket.create_connection((info["host"], info["port"]), timeout=60) as sock:
        assert sock.recv(1) == b""  # the service closed the silent connection


def answered_status(sock: socket.socket, token: str) -> int:
    """The status the service gives `sock`: a refused connection was answered 503 unasked (it is
    readable); a held one answers a request sent now."""
    try:
        if not select.select([sock], [], [], 0)[0]:
            sock.sendall(f"GET /dlim/v1/model HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n\r\n".encode())
        out = b""
        while (chunk := sock.recv(65536)) and not answered(out := out + chunk):
            pass
    except ConnectionResetError:  # refused while the request was on its way
        return 503
    return int(out.split()[1])


def test_connections_are_bounded_and_idle_ones_hold_no_thread(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_SERVICE_MAX_CONNECTIONS", "20")
    monkeypatch.setenv("MLOPS_SERVICE_IDLE_TIMEOUT", "600")  # no held connection closes under the test
    info = start_service(workspace)
    # A first connection, kept alive, answered once everything the service starts is running
    # (companions, a management thread); it is one of the 20 the service holds.
    first = socket.create_connection((info["host"], info["port"]), timeout=60)
    assert answered_status(first, info["token"]) == 200
    before = threads_of(info["pid"])
    socks = [socket.create_connection((info["host"], info["port"]), timeout=60) for _ in range(59)]
    try:
        # Those over the bound are answered 503 and closed at once; the others stay open, idle.
        wait_for(
            lambda: sum(bool(select.select([s], [], [], 0)[0]) for s in socks) >= 40,
            timeout=120,
            what="40 refusals",
        )
        # 20 idle connections and no thread for them (a companion may start one of its own).
        assert threads_of(info["pid"]) < before + 5
        status, body = request(info, "GET", "/dlim/v1/model", {"X-Auth-Token": info["token"]})
        assert status == 503 and "too many open connections" in body["error"]
        # Every connection is either held and served or refused: at most the bound is held (a
        # stray connection from another process of this machine may hold one of the 20 slots).
        statuses = [answered_status(s, info["token"]) for s in socks]
        held = statuses.count(200)
        assert held + statuses.count(503) == 59
        assert 19 <= 1 + held <= 20
    finally:
        for s in [first, *socks]:
            s.close()
    wait_for(
        lambda: request(info, "GET", "/dlim/v1/model", {"X-Auth-Token": info["token"]})[0] == 200,
        timeout=120,
        what="the service to serve again once the connections closed",
    )


def test_a_post_whose_connection_drops_is_reported_not_sent_again(
    workspace: Workspace, tmp_path: Path
) -> None:
    inference = LocalInference(workspace)
    deploy_started(inference, make_folder(tmp_path, COUNTING_KERNEL), kernel_min=1, kernel_max=1)
    runs, gate = tmp_path / "runs.txt", tmp_path / "gate"
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(
                inference.infer("dep", json.dumps({"runs": str(runs), "gate": str(gate)}).encode())
            )
        except Exception as exc:  # asserted below
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: runs.exists(), what="the request to run")
    pid = service_info(workspace)["pid"]
    os.kill(pid, signal.SIGKILL)
    caller.join()
    wait_for(lambda: gone(pid), what="the killed service to be gone")
    gate.touch()
    (error,) = outcome
    assert isinstance(error, DroppedConnection) and "not sent again" in str(error)
    assert service_info(workspace) is None  # no new service was started to send it again
    assert runs.read_text() == "ran\n"


def test_a_post_after_the_service_closed_an_idle_connection_runs_once(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_SERVICE_IDLE_TIMEOUT", "1")
    inference = LocalInference(workspace)
    deploy_started(inference, make_folder(tmp_path, COUNTING_KERNEL), kernel_min=1, kernel_max=1)
    runs, gate = tmp_path / "runs.txt", tmp_path / "gate"
    gate.touch()
    body = json.dumps({"runs": str(runs), "gate": str(gate)}).encode()
    inference.infer("dep", body)
    kept = inference._local.conn.sock  # this thread's kept-alive connection
    wait_for(lambda: select.select([kept], [], [], 0)[0], timeout=120, what="the service to close it")
    assert inference.infer("dep", body) == b"{}"  # on a new connection, not an error
    assert runs.read_text() == "ran\nran\n"


def test_a_connection_idle_for_half_the_idle_timeout_is_not_reused(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service may be closing such a connection just as a POST is written into it."""
    monkeypatch.setenv("MLOPS_SERVICE_IDLE_TIMEOUT", "4")
    inference = LocalInference(workspace)
    deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    inference.infer("dep", b"{}")
    first = inference._local.conn
    inference.infer("dep", b"{}")
    assert inference._local.conn is first  # kept alive while recently used
    time.sleep(2.1)  # past half the idle timeout (the service would keep it 2 s longer)
    inference.infer("dep", b"{}")
    assert inference._local.conn is not first


# --- tar uploads --------------------------------------------------------------------------------


def tar_of(entries: list[tuple[str, bytes | str | None]], mode: str = "w:gz") -> bytes:
    """A tar from (name, content): bytes = a file, str = a symbolic link to it, None = a folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def submission(name: str = "tarred") -> list[tuple[str, bytes | str | None]]:
    return [
        ("kernel.py", ECHO_KERNEL.encode()),
        ("README.md", b"readme\n"),
        ("model.json", json.dumps({"name": name, "kernel_path": "kernel.py"}).encode()),
    ]


def upload(info: dict[str, Any], body: bytes, name: str = "tarred") -> tuple[int, Any]:
    return request(
        info,
        "POST",
        f"/dlim/v1/deployment/model?name={name}",
        {"X-Auth-Token": info["token"], "Content-Type": "application/octet-stream"},
        body,
    )


def test_tar_uploads_are_bounded_by_size_entries_and_ratio(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_ARCHIVE_MAX_BYTES", str(80 << 20))
    monkeypatch.setenv("MLOPS_ARCHIVE_MAX_ENTRIES", "50")
    info = start_service(workspace)
    status, body = upload(
        info, tar_of([*submission(), ("weights.bin", os.urandom(1 << 20)), ("link.bin", "weights.bin")])
    )
    assert status == 200 and body["name"] == "tarred"

    status, body = upload(info, tar_of([*submission(), ("big.bin", b"\0" * (81 << 20))]))
    assert status == 400 and "84936504 bytes uncompressed, over the limit max_total_bytes" in body["error"]
    assert body["hint"]["args"]["variable"] == "MLOPS_ARCHIVE_MAX_BYTES"
    status, body = upload(info, tar_of([*submission(), *((f"f{i}", b"x") for i in range(60))]))
    assert status == 400 and "63 entries, over the limit max_entries=50" in body["error"]
    status, body = upload(
        info, tar_of([*submission(), ("ones.bin", b"\1" * (70 << 20))])
    )  # the default ratio (zeros would be holes, taking no disk)
    assert status == 400 and "over the limit max_ratio=200" in body["error"]
    leftovers = [p.name for p in (workspace.root / "inference").iterdir() if p.name.startswith("upload-")]
    assert leftovers == []


@pytest.mark.parametrize(
    "entries, why",
    [
        # The hostile zip of issue 12, as a tar: a link replaced after a later entry relied on it.
        (
            [
                ("y", "a/b/c/d/e/f/g/h/i/j"),
                ("model.json", "y/../../../../../../../../../../outside/pwned.json"),
                ("y", "."),
            ],
            "holds it twice",
        ),
        # without the swap, one level more: model.json really leads out through y
        ([("y", "a/b/c/d/e/f/g/h/i/j"), ("model.json", "y/" + "../" * 11 + "pwned.json")], "points outside"),
        ([("up", "."), ("up/pwned.json", b"x")], "lies below the link"),  # never written through a link
        ([("abs", "/tmp")], "points outside"),
        ([("../pwned.json", b"x")], "climbs out"),
        ([("/tmp/pwned.json", b"x")], "absolute"),
        ([("loop", "loop/x")], "form a loop"),
    ],
)
def test_no_tar_entry_lands_outside_the_folder(tmp_path: Path, entries: list[Any], why: str) -> None:
    archive, dest = tmp_path / "up.tar", tmp_path / "a" / "b" / "dest"
    archive.write_bytes(tar_of(entries, mode="w"))
    dest.mkdir(parents=True)
    with pytest.raises(MlopsError, match=why):
        safe_untar(archive, dest, ArchiveLimits())
    assert list(dest.iterdir()) == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "dest", "up.tar"]


def test_an_escaping_upload_is_refused_by_the_service(service: dict[str, Any], tmp_path: Path) -> None:
    status, body = upload(service, tar_of([*submission(), ("up", "."), ("up/README.md", b"x")]))
    assert status == 400 and "lies below the link 'up'" in body["error"]
    assert request(service, "GET", "/dlim/v1/model", {"X-Auth-Token": service["token"]}) == (200, [])


def test_a_body_of_megabytes_reaches_the_kernel_byte_for_byte(workspace: Workspace, tmp_path: Path) -> None:
    inference = LocalInference(workspace)
    deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    blob = os.urandom(3 << 20).hex()  # 6 MB: sent in the chunks it arrived in, never joined
    out = json.loads(inference.infer("dep", json.dumps({"do": "echo", "blob": blob}).encode()))
    assert out["input"]["blob"] == blob


DIGEST_KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import hashlib, json

class DigestKernel(Kernel):
    def on_task_invoke(self, task_context):
        data = task_context.get_input_data().encode("utf-8", "surrogateescape")
        task_context.set_output_data(json.dumps({"n": len(data), "sha256": hashlib.sha256(data).hexdigest()}))

if __name__ == '__main__':
    DigestKernel().run()
"""


def test_bodies_of_known_length_arrive_whole_one_after_the_other_on_one_connection(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A body with a Content-Length is read into one buffer (`bodies.py`): a 13 MB image arrives
    byte for byte, and two requests sent at once on one connection each get exactly their own
    bytes (the first read never takes the second's)."""
    assert bodies.HOOKABLE, "tornado's HTTP1Connection._read_fixed_body changed: adapt bodies.py"
    inference = LocalInference(workspace)
    deploy_started(inference, make_folder(tmp_path, DIGEST_KERNEL), kernel_min=1, kernel_max=1)
    info = service_info(workspace)
    assert info is not None
    first, second = os.urandom(13 << 20), b"\xff" + os.urandom(1 << 20)
    head = "POST /dlim/v1/inference/dep HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {}\r\nContent-Length: {}\r\n\r\n"
    with socket.create_connection((info["host"], info["port"]), timeout=120) as sock:
        sock.sendall(head.format(info["token"], len(first)).encode() + first)
        sock.sendall(head.format(info["token"], len(second)).encode() + second)
        answers = []
        with sock.makefile("rb") as answer:
            for _ in range(2):
                assert answer.readline().startswith(b"HTTP/1.1 200")
                length = 0
                while (line := answer.readline()) != b"\r\n":
                    name, _, value = line.partition(b":")
                    length = int(value) if name.lower() == b"content-length" else length
                answers.append(json.loads(answer.read(length)))
    assert answers == [
        {"n": len(body), "sha256": hashlib.sha256(body).hexdigest()} for body in (first, second)
    ]


def test_a_body_over_the_size_limit_is_refused_before_it_is_read(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Content-Length is checked against MLOPS_SERVICE_MAX_BODY before any buffer is taken
    or any body byte read: the answer comes while the client still holds back most of its body."""
    monkeypatch.setenv("MLOPS_SERVICE_MAX_BODY", str(1 << 20))
    info = start_service(workspace)
    try:
        with socket.create_connection((info["host"], info["port"]), timeout=60) as sock:
            sock.sendall(
                f"POST /dlim/v1/inference/dep HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {info['token']}\r\n"
                f"Content-Length: {2 << 20}\r\n\r\n".encode()
                + b"x" * 1000
            )
            out = b""
            while chunk := sock.recv(65536):  # answered, then closed by the service
                out += chunk
        assert out.startswith(b"HTTP/1.1 400")
    finally:
        stop_service(workspace)


# --- hardening (issues 22 and 23) -----------------------------------------------------------------


def test_the_token_is_checked_before_any_body_byte_is_read(service: dict[str, Any]) -> None:
    """Issue 22: four unauthenticated 1 GiB bodies pushed the service to 2.3 GB, and a slow one
    held a connection for 601 s. Now the headers alone are answered 401 and the connection closed."""
    rss_before = int(Path(f"/proc/{service['pid']}/statm").read_text().split()[1])
    socks = []
    for _ in range(4):
        sock = socket.create_connection((service["host"], service["port"]), timeout=60)
        sock.sendall(
            b"POST /dlim/v1/inference/dep HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n"
            + b"x" * 65536
        )
        socks.append(sock)
    for sock in socks:
        out = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):  # answered, then closed by the service
                out += chunk
        sock.close()
        assert out.startswith(b"HTTP/1.1 401") and b"service.json" in out
    rss_after = int(Path(f"/proc/{service['pid']}/statm").read_text().split()[1])
    assert (rss_after - rss_before) * os.sysconf("SC_PAGE_SIZE") < 32 << 20


def test_basic_auth_with_the_token_as_password_is_accepted(service: dict[str, Any]) -> None:
    good = base64.b64encode(f"anyone:{service['token']}".encode()).decode()
    assert request(service, "GET", "/dlim/v1/model", {"Authorization": f"Basic {good}"}) == (200, [])
    for bad in (base64.b64encode(b"anyone:wrong").decode(), "%%%", base64.b64encode(b"\xff").decode()):
        assert request(service, "GET", "/dlim/v1/model", {"Authorization": f"Basic {bad}"})[0] == 401


def test_headers_over_64_kb_get_431_and_unknown_paths_a_json_404(service: dict[str, Any]) -> None:
    """Issue 23: a header over 64 KB dropped the connection without a status."""
    out = raw(service, b"GET /dlim/v1/model HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 << 10) + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431") and b"64 KB" in out
    status, body = request(service, "GET", "/dlim/v1/nowhere", {"X-Auth-Token": service["token"]})
    assert status == 404 and "no route GET /dlim/v1/nowhere" in body["error"]
    assert request(service, "GET", "/dlim/v1/nowhere")[0] == 401  # the token first


def test_malformed_bodies_get_400_with_what_was_expected(
    service: dict[str, Any], workspace: Workspace, tmp_path: Path
) -> None:
    """Issue 23: these bodies got 500."""
    auth = {"X-Auth-Token": service["token"]}
    LocalInference(workspace).deploy("dep", make_folder(tmp_path))
    for body in (b"[]", b"null", b"1e999999", b'"x"'):
        status, answer = request(service, "PUT", "/dlim/v1/model/dep/operation/start", auth, body)
        assert status == 400 and "must be a JSON object" in answer["error"], body
    status, answer = request(
        service, "PUT", "/dlim/v1/model/dep/operation/start", auth, b'{"secret_args": [1]}'
    )
    assert status == 400 and "secret_args" in answer["error"]
    folder = str(make_folder(tmp_path / "other"))
    for doc, expected in (
        ({"path": 5}, "as strings"),
        ({"name": ["x"], "path": folder}, "as strings"),
        ({"name": "dep2", "path": folder, "custom_args": [1]}, "custom_args"),
        ({"name": "dep2", "path": folder, "custom_args": {"A": {"b": 1}}}, "custom_args"),
        ({"name": "dep2", "path": folder, "secret_args": "x"}, "secret_args"),
    ):
        status, answer = request(service, "POST", "/mlops/v1/deployment", auth, json.dumps(doc).encode())
        assert status == 400 and expected in answer["error"], doc
    for body in (b"[]", b"1e999999"):
        status, answer = request(service, "PUT", "/dlim/v1/model/dep/appprofile", auth, body)
        assert status == 400 and "must be a JSON object" in answer["error"]
    assert "Traceback" not in (workspace.root / "inference" / "service.log").read_text()


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"kernel_max": -1}, "kernel_max must be an integer from 1 to 64, got -1"),
        ({"kernel_max": 100000}, "kernel_max must be an integer from 1 to 64, got 100000"),
        ({"kernel_min": 65, "kernel_max": 64}, "kernel_min must be an integer from 0 to 64, got 65"),
        (
            {"task_execution_timeout": 10**10},
            "task_execution_timeout must be an integer from 1 to 86400 or -1",
        ),
        ({"task_execution_timeout": 1e10}, "task_execution_timeout must be an integer"),
        ({"task_execution_timeout": 0}, "task_execution_timeout must be an integer from 1 to 86400 or -1"),
        (
            {"kernel_delay_release_time": 10**9},
            "kernel_delay_release_time must be an integer from 0 to 86400",
        ),
        ({"task_pipe_size": 1000}, "task_pipe_size must be an integer from 0 to 16"),
    ],
)
def test_profile_changes_through_the_edi_api_are_bounded(
    service: dict[str, Any], workspace: Workspace, tmp_path: Path, policy: dict[str, Any], message: str
) -> None:
    """Issue 22: kernel_max -1 or 100000 (75 kernels ran) and timeouts of 1e10 s were accepted."""
    auth = {"X-Auth-Token": service["token"]}
    LocalInference(workspace).deploy("dep", make_folder(tmp_path))
    body = json.dumps({"policy": policy}).encode()
    status, answer = request(service, "PUT", "/dlim/v1/model/dep/appprofile", auth, body)
    assert status == 400 and message in answer["error"]
    status, profile = request(service, "GET", "/dlim/v1/model/dep/appprofile", auth)
    assert profile["policy"]["kernel_max"] == 3 and profile["policy"]["task_execution_timeout"] == 60
    status, answer = request(
        service, "PUT", "/dlim/v1/model/dep/appprofile", auth, b'{"kernel": {"connection_timeout": 3601}}'
    )
    assert status == 400 and "connection_timeout must be an integer from 1 to 3600" in answer["error"]


def test_the_service_log_rotates_at_its_size_limit(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22: 2,000 garbage requests grew service.log from 1 KB to 207 KB, never rotated."""
    monkeypatch.setenv("MLOPS_SERVICE_LOG_MB", "0.0625")  # 64 KB, the least a log file holds
    monkeypatch.setenv("MLOPS_SERVICE_LOG_FILES", "2")
    info = start_service(workspace)
    try:
        inference = workspace.root / "inference"
        for _ in range(2000):
            raw(info, b"GARBAGE\r\n\r\n")
            if (inference / "service.log.1").exists() and (inference / "service.log").stat().st_size > 1000:
                break
        logs = sorted(p.name for p in inference.glob("service.log*"))
        assert logs == ["service.log", "service.log.1"]
        assert all((inference / n).stat().st_size <= (64 << 10) + 4096 for n in logs)
        assert all((inference / n).stat().st_mode & 0o777 == 0o600 for n in logs)
        assert b"Malformed HTTP" in (inference / "service.log").read_bytes()  # the new file is written
    finally:
        stop_service(workspace)
