"""The local inference service: EDI kernels run unmodified, /dlim/v1 semantics, scaling, faults.

Kernels here are written as for WMLA (bare `import redhareapiversion`, custom args read as bare
globals). Every test stops the workspace's service and kernels at teardown.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ECHO_KERNEL, ask, deploy_started, gone, log_text, make_folder, wait_for, wait_status

from mlops_widgets.backends.local.inference import (
    InferenceError,
    LocalInference,
    pool,
    service_info,
    start_service,
    stop_service,
)
from mlops_widgets.backends.local.inference.service import Service
from mlops_widgets.backends.views import DeploymentView
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace

ARGS_KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import json

class ArgsKernel(Kernel):
    def on_task_invoke(self, task_context):
        task_context.set_output_data(json.dumps({"user": USER_NAME, "key": API_KEY}))

if __name__ == '__main__':
    ArgsKernel().run()
"""

FAILING_START_KERNEL = """\
try:
    import redhareapiversion
except ImportError:
    pass
from redhareapi import Kernel

class BrokenKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        print("loading weights")
        raise RuntimeError("weights missing at /nowhere/model.pt")

if __name__ == '__main__':
    BrokenKernel().run()
"""


@pytest.fixture
def inference(workspace: Workspace) -> Iterator[LocalInference]:
    yield LocalInference(workspace)
    stop_service(workspace)


def parallel(*calls: Callable[[], Any], meanwhile: Callable[[], Any] | None = None) -> list[Any]:
    """Each call's result or exception; `meanwhile` runs while they do."""
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            results[i] = call()
        except Exception as exc:  # collected and asserted by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    try:
        if meanwhile is not None:
            meanwhile()
    finally:
        for t in threads:
            t.join()
    return results


def busy(view: DeploymentView) -> int:
    return sum(k.state == "busy" for k in view.kernels)


def gated(
    inf: LocalInference, gate: Path, placed: Callable[[DeploymentView], bool], *calls: Callable[[], Any]
) -> list[Any]:
    """Run `calls` (requests that wait on the file `gate`) together and open the gate once the
    deployment's view says they are placed: which kernel runs what is then certain, not a race."""

    def open_when_placed() -> None:
        try:
            wait_for(lambda: placed(inf.view("dep")), what="the requests to be placed")
        finally:
            gate.touch()

    return parallel(*calls, meanwhile=open_when_placed)


def at_gate(inf: LocalInference, gate: Path, **req: Any) -> Callable[[], Any]:
    return lambda: ask(inf, do="gate", gate=str(gate), **req)


# --- compatibility modules -------------------------------------------------------------------------


def test_redhareapi_is_not_importable_outside_kernels() -> None:
    import importlib.util

    assert importlib.util.find_spec("redhareapi") is None
    assert importlib.util.find_spec("redhareapiversion") is None
    out = subprocess.run([sys.executable, "-c", "import redhareapi"], capture_output=True, text=True)
    assert out.returncode != 0 and "No module named 'redhareapi'" in out.stderr


def test_task_context_batches_in_process() -> None:
    from mlops_widgets.backends.local.inference import KERNEL_PATH

    sys.path.insert(0, str(KERNEL_PATH))
    try:
        import redhareapi

        first = redhareapi.TaskContext.batch(["a", b"b"], model_name="m")
        assert first.get_input_data() == "a" and first.get_model_name() == "m"
        second = first.next()
        assert second is not None and second.get_input_data() == "b" and second.next() is None
        with pytest.raises(RuntimeError, match="not started by one"):
            redhareapi.Kernel().run()
    finally:
        sys.path.remove(str(KERNEL_PATH))
        sys.modules.pop("redhareapi", None)


# --- lifecycle and the REST semantics -------------------------------------------------------------


def test_deploy_start_infer_stop_undeploy(inference: LocalInference, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    view = inference.deploy("dep", folder)
    assert view.state == "stopped" and view.status == "STOPPED"
    with pytest.raises(InferenceError, match="not started") as info:
        inference.infer("dep", b"{}")
    assert info.value.status == 503

    profile = inference.update_profile("dep", {"policy": {"kernel_min": 1, "kernel_max": 1}})
    assert profile["policy"]["kernel_min"] == 1 and profile["policy"]["task_execution_timeout"] == 60
    inference.start("dep")
    view = wait_status(inference, "dep", "IDLE")
    assert view.url.endswith("/dlim/v1/inference/dep") and view.url.startswith("http://127.0.0.1:")
    assert inference.url("dep") == view.url
    (kernel,) = view.kernels

    # The body goes in verbatim and the kernel's output comes back verbatim.
    body = '{"text":  "héllo \\u00e9",   "n": [1, 2]}'.encode()
    out = json.loads(inference.infer("dep", body))
    assert out["input"] == json.loads(body) and out["pod"] == kernel.pod

    with pytest.raises(ConflictError, match="The model cannot be removed if it's started."):
        inference.undeploy("dep")
    with pytest.raises(ConflictError, match="only be changed while it is stopped"):
        inference.update_profile("dep", {"policy": {"kernel_max": 3}})
    with pytest.raises(ConflictError, match="is started"):
        inference.deploy("dep", folder)

    assert inference.stop("dep").status == "STOPPED"
    assert gone(kernel.pid)
    assert f"kernel shutdown {kernel.pod}" in log_text(inference)  # on_kernel_shutdown ran
    inference.undeploy("dep")
    assert inference.list() == []
    with pytest.raises(NotFoundError):
        inference.view("dep")


def test_deploy_checks_the_folder_and_the_name(inference: LocalInference, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    with pytest.raises(MlopsError, match="invalid deployment name"):
        inference.deploy("Bad_Name", folder)
    (folder / "README.md").unlink()
    with pytest.raises(MlopsError, match="lacks README.md"):
        inference.deploy("dep", folder)
    other = make_folder(tmp_path, name="other", kernel_path="missing.py")
    with pytest.raises(MlopsError, match="no kernel file 'missing.py'"):
        inference.deploy("other", other)
    with pytest.raises(MlopsError, match="kernel_max must be"):
        inference.deploy("other2", make_folder(tmp_path, name="other2"))
        inference.update_profile("other2", {"policy": {"kernel_min": 2, "kernel_max": 1}})
    with pytest.raises(MlopsError, match="gpu must be one of"):
        inference.update_profile("other2", {"kernel": {"gpu": "all"}})


def test_service_token_file_and_raw_rest_api(
    inference: LocalInference, workspace: Workspace, tmp_path: Path
) -> None:
    info = start_service(workspace)
    info_file = workspace.root / "inference" / "service.json"
    assert stat.S_IMODE(info_file.stat().st_mode) == 0o600
    assert info["host"] == "127.0.0.1"

    def call(
        method: str,
        path: str,
        body: bytes | None = None,
        token: str | None = info["token"],
        ctype: str = "application/json",
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=30)
        headers = {"Content-Type": ctype}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, "/dlim/v1" + path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, json.loads(data) if data else None

    assert call("GET", "/model", token=None)[0] == 401
    assert call("GET", "/model", token="wrong")[0] == 401
    assert call("GET", "/model") == (200, [])

    # Deploy as WMLA takes it: a gzip tar of the folder.
    folder = make_folder(tmp_path, name="tarred")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname="tarred")
    status, view = call(
        "POST", "/deployment/model?name=tarred", buf.getvalue(), ctype="application/octet-stream"
    )
    assert status == 200 and view["name"] == "tarred"
    assert call("GET", "/model/tarred/instance")[1]["state"] == "disabled"
    assert call("GET", "/model/tarred/appprofile")[1]["policy"]["kernel_min"] == 1
    assert (
        call("PUT", "/model/tarred/appprofile", json.dumps({"policy": {"kernel_max": 2}}).encode())[0] == 200
    )
    assert call("PUT", "/model/tarred/operation/start")[0] == 200
    wait_status(inference, "tarred", "IDLE")
    assert call("GET", "/model/tarred/instance")[1]["state"] == "enabled"
    # Private from their creation: the service's log and the kernels' pid files.
    private = [
        workspace.root / "inference" / "service.log",
        *(workspace.root / "inference" / "run").glob("*.pid"),
    ]
    assert len(private) == 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in private)
    status, out = call("POST", "/inference/tarred", b'{"a": 1}')
    assert status == 200 and out["input"] == {"a": 1}
    status, err = call("DELETE", "/model/tarred")
    assert status == 409 and "The model cannot be removed if it's started." in err["error"]
    assert call("GET", "/model/nope")[0] == 404
    assert call("PUT", "/model/tarred/operation/stop")[0] == 200
    assert call("DELETE", "/model/tarred")[0] == 200
    assert call("GET", "/model") == (200, [])


def test_concurrent_starts_share_one_service(workspace: Workspace) -> None:
    try:
        infos = parallel(*[lambda: start_service(workspace)] * 4)
        assert len({i["pid"] for i in infos}) == 1
    finally:
        stop_service(workspace)


# --- what a kernel sees ----------------------------------------------------------------------------


def test_kernel_environment_and_unmodified_kernel_file(
    inference: LocalInference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLER_API_KEY", "caller-credential-123")  # must not reach kernels
    folder = make_folder(tmp_path, mk_environments=[{"name": "SPACE_ID", "value": "space-1"}])
    inference.deploy("dep", folder)
    inference.update_profile(
        "dep",
        {
            "kernel": {"envs": [{"name": "FROM_PROFILE", "value": "yes"}]},
            "policy": {"kernel_min": 2, "kernel_max": 2},
        },
    )
    inference.start("dep")
    view = wait_status(inference, "dep", "IDLE")
    names = [
        "REDHARE_MODEL_NAME",
        "REDHARE_MODEL_PATH",
        "MSD_POD_NAME",
        "SPACE_ID",
        "FROM_PROFILE",
        "CALLER_API_KEY",
    ]
    gate = tmp_path / "gate"
    outs = gated(inference, gate, lambda v: busy(v) == 2, *[at_gate(inference, gate, env=names)] * 2)
    model_path = view.model_path
    for out in outs:
        env = out["env"]
        assert env["REDHARE_MODEL_NAME"] == "dep" and env["REDHARE_MODEL_PATH"] == model_path
        assert env["SPACE_ID"] == "space-1" and env["FROM_PROFILE"] == "yes"
        assert env["CALLER_API_KEY"] is None
        assert out["model_path"] == model_path and out["cwd"] != model_path
    assert {o["env"]["MSD_POD_NAME"] for o in outs} == {k.pod for k in view.kernels}
    assert (Path(model_path) / "kernel.py").read_text() == ECHO_KERNEL


def test_custom_args_are_module_globals_and_secrets_stay_off_disk(
    inference: LocalInference, workspace: Workspace, tmp_path: Path
) -> None:
    secret = "s3cr3t-value-that-must-not-touch-disk"
    folder = make_folder(tmp_path, ARGS_KERNEL)
    view = inference.deploy(
        "dep", folder, custom_args={"USER_NAME": "alice"}, secret_args={"API_KEY": secret}
    )
    assert view.custom_args == ("USER_NAME",) and view.secret_args == ("API_KEY",)
    inference.start("dep")
    wait_status(inference, "dep", "IDLE")
    assert json.loads(inference.infer("dep", b"{}")) == {"user": "alice", "key": secret}
    for path in workspace.root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"secret written to {path}"


def test_secret_args_are_asked_again_after_a_service_restart(
    inference: LocalInference, workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inference.deploy(
        "dep",
        make_folder(tmp_path, ARGS_KERNEL),
        custom_args={"USER_NAME": "bob"},
        secret_args={"API_KEY": "first"},
    )
    inference.start("dep")
    wait_status(inference, "dep", "IDLE")
    os.kill(service_info(workspace)["pid"], signal.SIGKILL)
    wait_for(lambda: not inference.running(), what="the service to die")
    monkeypatch.delenv("API_KEY", raising=False)
    with pytest.raises(MlopsError, match="set the environment variable API_KEY"):
        inference.start("dep")  # the new service restored dep without its secret: FAILED
    view = inference.view("dep")
    assert view.status == "FAILED" and view.kernels == ()
    monkeypatch.setenv("API_KEY", "second")
    inference.start("dep")  # stops the failed kernel pool (joining any kernel it had) first
    wait_status(inference, "dep", "IDLE")
    assert json.loads(inference.infer("dep", b"{}")) == {"user": "bob", "key": "second"}
    # Two kernels ever: the first service's and this one; none booted without its secret.
    assert len({line.split("]")[0] for line in inference.logs("dep")}) == 2


# --- scaling and batching ---------------------------------------------------------------------------


def test_kernels_scale_with_load_and_idle_ones_are_released(
    inference: LocalInference, tmp_path: Path
) -> None:
    # No task sent ahead to a busy kernel (test_pipelining.py): the third request waits queued.
    view = deploy_started(
        inference,
        make_folder(tmp_path),
        kernel_min=0,
        kernel_max=2,
        kernel_delay_release_time=1,
        task_pipe_size=0,
    )
    assert view.kernels == ()  # kernel_min 0: no kernel until the first request
    gate, seen = tmp_path / "gate", []

    def placed(v: DeploymentView) -> bool:
        seen.append(v)
        return busy(v) == 2 and v.queued == 1

    outs = gated(inference, gate, placed, *[at_gate(inference, gate)] * 3)
    assert all(isinstance(o, dict) for o in outs), outs
    assert len(seen[-1].kernels) == 2  # scaled up to kernel_max, no further, while one request waits
    assert len({o["pod"] for o in outs}) == 2
    wait_for(lambda: inference.view("dep").kernels == (), what="idle kernels to be released")


def test_kernel_min_is_kept_after_release(inference: LocalInference, tmp_path: Path) -> None:
    deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=2, kernel_delay_release_time=1)
    gate = tmp_path / "gate"
    outs = gated(inference, gate, lambda v: busy(v) == 2, *[at_gate(inference, gate)] * 2)
    assert len({o["pod"] for o in outs}) == 2
    (kept,) = wait_for(lambda: len(k := inference.view("dep").kernels) == 1 and k, what="one kernel left")
    time.sleep(1.2)  # past kernel_delay_release_time: the last kernel is kept, not released
    assert [k.pod for k in inference.view("dep").kernels] == [kept.pod]


def test_task_batch_size_through_next(inference: LocalInference, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    inference.deploy("dep", folder)
    inference.update_profile("dep", {"policy": {"kernel_min": 1, "kernel_max": 1, "task_batch_size": 3}})
    inference.start("dep")
    wait_status(inference, "dep", "IDLE")
    gate = tmp_path / "gate"

    def three_queued_behind_the_busy_kernel() -> list[Any]:
        wait_for(lambda: busy(inference.view("dep")) == 1, what="the kernel to take the first request")
        return gated(inference, gate, lambda v: v.queued == 3, *[lambda: ask(inference, do="echo")] * 3)

    first, rest = parallel(at_gate(inference, gate), three_queued_behind_the_busy_kernel)
    assert first["batch"] == 1
    assert [o["batch"] for o in rest] == [3, 3, 3]


# --- faults ------------------------------------------------------------------------------------------


def test_task_past_timeout_gets_504_and_its_kernel_is_replaced(
    inference: LocalInference, tmp_path: Path
) -> None:
    view = deploy_started(
        inference, make_folder(tmp_path), kernel_min=1, kernel_max=1, task_execution_timeout=1
    )
    (old,) = view.kernels
    with pytest.raises(InferenceError, match=r"task_execution_timeout \(1 s\)") as info:
        ask(inference, do="sleep", seconds=60)  # answered 200 after 60 s unless the timeout fires
    assert info.value.status == 504
    assert wait_for(lambda: gone(old.pid), what="the old kernel to end")
    out = ask(inference, do="echo")
    assert out["pod"] != old.pod


def test_exception_in_on_task_invoke_is_500_with_the_error(inference: LocalInference, tmp_path: Path) -> None:
    view = deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    with pytest.raises(InferenceError, match="ValueError: bad input: no pixels") as info:
        ask(inference, do="raise", why="no pixels")
    assert info.value.status == 500
    assert ask(inference, do="echo")["pod"] == view.kernels[0].pod  # the kernel lives on
    assert "ValueError: bad input: no pixels" in log_text(inference)  # traceback in its log


def test_missing_output_is_500(inference: LocalInference, tmp_path: Path) -> None:
    deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    with pytest.raises(InferenceError, match="set no output") as info:
        ask(inference, do="silent")
    assert info.value.status == 500


def test_a_dying_kernel_fails_only_its_tasks(inference: LocalInference, tmp_path: Path) -> None:
    view = deploy_started(inference, make_folder(tmp_path), kernel_min=2, kernel_max=2)
    before = {k.pod for k in view.kernels}
    gate = tmp_path / "gate"

    def die_beside_the_held_kernel() -> Any:
        try:
            wait_for(lambda: busy(inference.view("dep")) == 1, what="a kernel to hold the gated request")
            return ask(inference, do="die")
        finally:
            gate.touch()

    held, dead = parallel(at_gate(inference, gate), die_beside_the_held_kernel)
    assert isinstance(held, dict) and held["pod"] in before
    assert isinstance(dead, InferenceError) and dead.status == 500
    assert "died (exit code 3)" in str(dead)
    view = wait_for(
        lambda: (v := inference.view("dep")).status == "IDLE" and len(v.kernels) == 2 and v,
        what="a replacement kernel",
    )
    assert len({k.pod for k in view.kernels} - before) == 1
    assert all(isinstance(o, dict) for o in parallel(*[lambda: ask(inference, do="echo")] * 4))


def test_requests_that_crash_their_kernel_do_not_fail_the_deployment(
    inference: LocalInference, tmp_path: Path
) -> None:
    deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    for _ in range(4):  # more than the idle deaths (3) that fail a deployment
        with pytest.raises(InferenceError, match="died") as info:
            ask(inference, do="die")
        assert info.value.status == 500
    assert ask(inference, do="echo")["input"] == {"do": "echo"}
    assert wait_status(inference, "dep", "IDLE").error is None


def test_a_request_that_times_out_while_queued_never_runs(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One GPU, held by the holder's exclusive kernel: the waiter can start no kernel at all.
    monkeypatch.setenv("MLOPS_GPUS", "0")
    monkeypatch.setattr(pool, "WAIT_SLACK", 0.0)  # wait limit: connection_timeout + task timeout
    svc = Service(workspace, "http://127.0.0.1:1")
    try:
        for name, profile in (
            ("holder", {"policy": {"kernel_min": 1, "kernel_max": 1}}),
            (
                "waiter",
                {
                    "policy": {"kernel_min": 0, "kernel_max": 1, "task_execution_timeout": 1},
                    "kernel": {"connection_timeout": 1},
                },
            ),
        ):
            svc.deploy(name, make_folder(tmp_path, name=name))
            svc.update_profile(name, profile)
            svc.update_profile(name, {"kernel": {"gpu": "exclusive"}})
            svc.start(name)
        answered = threading.Event()
        waiter, task = svc.submit("waiter", b'{"do": "echo"}', lambda _task: answered.set())
        assert not answered.wait(waiter.wait_limit())  # no kernel can start: it waits its limit
        error = waiter.give_up(task)
        assert error.status == 504 and "no kernel took this request in time; it was dropped" in str(error)
        view = svc.diagnostics("waiter")
        assert view["queued"] == 0 and view["requests"] == {"total": 1, "failed": 1}
    finally:
        svc.shutdown()


def test_on_kernel_start_failure_shows_in_status_with_its_log(
    inference: LocalInference, tmp_path: Path
) -> None:
    inference.deploy("dep", make_folder(tmp_path, FAILING_START_KERNEL))
    inference.start("dep")
    view = wait_status(inference, "dep", "FAILED")
    assert "weights missing at /nowhere/model.pt" in view.error
    assert "loading weights" in view.error_log and "Traceback" in view.error_log
    with pytest.raises(InferenceError, match="weights missing") as info:
        inference.infer("dep", b"{}")
    assert info.value.status == 503
    assert "RuntimeError: weights missing" in log_text(inference)
    inference.stop("dep")
    assert inference.view("dep").status == "STOPPED"


def test_kernel_logs_hold_stdout_and_stderr(inference: LocalInference, tmp_path: Path) -> None:
    view = deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    ask(inference, do="print", text="marker-42")
    logs = log_text(inference)
    pod = view.kernels[0].pod
    assert f"[{pod}] stdout says marker-42" in logs and "INFO stderr says marker-42" in logs


# --- GPUs ---------------------------------------------------------------------------------------------


def test_exclusive_gpus_give_each_kernel_its_own(
    inference: LocalInference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_GPUS", "0,1")  # the GPUs the service may hand out
    inference.deploy("dep", make_folder(tmp_path))
    inference.update_profile(
        "dep", {"kernel": {"gpu": "exclusive"}, "policy": {"kernel_min": 2, "kernel_max": 3}}
    )
    inference.start("dep")
    view = wait_status(inference, "dep", "IDLE")
    assert sorted(k.gpu for k in view.kernels) == ["0", "1"]
    gate = tmp_path / "gate"
    outs = gated(inference, gate, lambda v: busy(v) == 2 and v.queued == 1, *[at_gate(inference, gate)] * 3)
    assert sorted(o["cuda"] for o in outs if isinstance(o, dict)) in (["0", "0", "1"], ["0", "1", "1"])
    assert len(inference.view("dep").kernels) == 2  # no third GPU: no third kernel


def test_gpus_asked_where_none_exist_warn_and_run_on_cpu(
    inference: LocalInference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_GPUS", "")
    inference.deploy("dep", make_folder(tmp_path))
    inference.update_profile("dep", {"kernel": {"gpu": "exclusive"}})
    inference.start("dep")
    view = wait_status(inference, "dep", "IDLE")
    assert any("has none: kernels run on CPU" in w for w in view.warnings)
    assert ask(inference, do="echo")["cuda"] is None


# --- the service process ------------------------------------------------------------------------------


def test_a_dead_service_is_reported_and_start_recovers(
    inference: LocalInference, workspace: Workspace, tmp_path: Path, cli: Any
) -> None:
    view = deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    old_kernel = view.kernels[0].pid
    os.kill(service_info(workspace)["pid"], signal.SIGKILL)
    wait_for(lambda: not inference.running(), what="the service to die")
    wait_for(lambda: gone(old_kernel), what="its kernel to notice and exit")

    (row,) = inference.list()
    assert row.status == "SERVICE_DOWN" and "not running" in row.error
    res = cli("deploy", "list")
    assert res.exit_code == 0 and "SERVICE_DOWN" in res.stdout and "not running" in res.stderr

    res = cli("deploy", "start", "--name", "dep")
    assert res.exit_code == 0, res.output
    assert inference.view("dep").status == "IDLE"
    assert ask(inference, do="echo")["input"] == {"do": "echo"}


def test_busy_kernels_of_a_killed_service_are_reaped(
    inference: LocalInference, workspace: Workspace, tmp_path: Path, cpu_burner: list[Any]
) -> None:
    view = deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    kernel = view.kernels[0].pid
    info = service_info(workspace)

    def busy_request() -> None:  # no retry: it ends when the service dies
        conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=60)
        try:
            conn.request(
                "POST",
                "/dlim/v1/inference/dep",
                body=b'{"do": "sleep", "seconds": 30}',
                headers={"Authorization": f"Bearer {info['token']}"},
            )
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass

    caller = threading.Thread(target=busy_request)
    caller.start()
    wait_for(lambda: inference.view("dep").kernels[0].state == "busy", what="the kernel to be busy")
    os.kill(info["pid"], signal.SIGKILL)
    caller.join()
    # SIGKILL takes effect when the kernel gets round to it: on a loaded machine the dying service
    # still holds its lock for a while, and start_service would take it for a running one.
    wait_for(lambda: gone(info["pid"]), what="the killed service to end")
    assert not gone(kernel)  # still sleeping in on_task_invoke, orphaned
    start_service(workspace)  # the next service reaps it before starting the deployment again
    wait_for(lambda: gone(kernel), what="the orphaned kernel to be reaped")
    assert wait_status(inference, "dep", "IDLE").kernels[0].pid != kernel


def test_stop_while_down_only_changes_the_state(
    inference: LocalInference, workspace: Workspace, tmp_path: Path
) -> None:
    deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    stop_service(workspace)
    assert inference.view("dep").status == "SERVICE_DOWN"
    assert inference.stop("dep").status == "STOPPED"
    assert not inference.running()
    start_service(workspace)
    assert inference.view("dep").status == "STOPPED"  # not restored: it was stopped


def test_stop_service_ends_the_service_and_every_kernel(
    inference: LocalInference, workspace: Workspace, tmp_path: Path
) -> None:
    view = deploy_started(inference, make_folder(tmp_path), kernel_min=2, kernel_max=2)
    service_pid = service_info(workspace)["pid"]
    assert stop_service(workspace) is True
    assert gone(service_pid) or not inference.running()
    for k in view.kernels:
        assert wait_for(lambda k=k: gone(k.pid), what="kernels to end")
    assert stop_service(workspace) is False


def test_mlops_serve_runs_in_the_foreground(workspace: Workspace, tmp_path: Path) -> None:
    mlops = Path(sys.executable).parent / "mlops"
    credentials = {"CALLER_API_KEY": "caller-credential-123", "MLOPS_SECRET_TOKEN": "runner-secret-456"}
    proc = subprocess.Popen(
        [str(mlops), "--workspace", str(workspace.root), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **credentials},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]  # the announcement and the log line
        assert any("Inference service on http://127.0.0.1:" in line for line in lines), lines
        inf = LocalInference(workspace)
        assert service_info(workspace)["pid"] == proc.pid
        view = deploy_started(inf, make_folder(tmp_path), kernel_min=1, kernel_max=1)
        out = ask(inf, do="echo", env=[*credentials, "PATH"])
        assert out["input"]["do"] == "echo" and out["env"]["PATH"]
        assert (
            out["env"]["CALLER_API_KEY"] is None and out["env"]["MLOPS_SECRET_TOKEN"] is None
        )  # not the caller's
        again = subprocess.run(
            [str(mlops), "--workspace", str(workspace.root), "serve"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 1 and "already runs" in again.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0
        assert gone(view.kernels[0].pid)
        assert not inf.running()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stop_service(workspace)
