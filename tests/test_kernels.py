"""Kernel processes of the local inference service as the operating system sees them: memory and
CPU limits, process groups and orphans, death noticed by the process, a clean environment, and
the deployment's kernel log (rotation, tail, follow, masked secrets, permissions). Every test runs
real kernel processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers import ESCAPE, ask, gone, log_text, make_folder, shm_path, wait_for, wait_status

from mlops_widgets.backends.local.inference import InferenceError, LocalInference, service_info, stop_service
from mlops_widgets.backends.local.inference.kernel_logs import LINE_MAX, KernelLog, read_lines
from mlops_widgets.masking import MASK
from mlops_widgets.workspace import Workspace

KERNEL = (
    """\
import redhareapiversion
from redhareapi import Kernel
import json, os, subprocess, sys, time
"""
    + ESCAPE
    + """

class SystemKernel(Kernel):
    def on_task_invoke(self, task_context):
        req = json.loads(task_context.get_input_data())
        do, out = req.get("do"), {}
        if do == "alloc":
            hold = b"x" * (req["mb"] << 20)
            time.sleep(req.get("hold", 60))
        elif do == "alloc_in_child":
            subprocess.run([sys.executable, "-c", "import time; hold = b'x' * (%d << 20); time.sleep(60)" % req["mb"]])
        elif do == "fork_and_exit":
            if os.fork() == 0:
                if req.get("setsid"):
                    os.setsid()
                with open(req["pidfile"] + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(req["pidfile"] + ".tmp", req["pidfile"])
                time.sleep(600)
                os._exit(0)
            while not os.path.exists(req["pidfile"]):  # the child is settled (in its own session)
                time.sleep(0.01)
            os._exit(7)
        elif do == "escape":
            out = {"escaped": escape(req.get("mb", 0), req.get("shm", ""))}
        elif do == "spawn":
            stay = subprocess.Popen(["sleep", "600"])
            left = subprocess.Popen(["sleep", "600"], start_new_session=True)
            out = {"pids": [stay.pid, left.pid]}
        elif do == "print":
            for line in req["lines"]:
                print(line)
        elif do == "spam":
            for i in range(req["n"]):
                print("line %06d %s" % (i, "x" * 90))
        out.update(
            pod=os.environ.get("MSD_POD_NAME"),
            env=dict(os.environ),
            cpus=sorted(os.sched_getaffinity(0)),
            executable=sys.executable,
        )
        task_context.set_output_data(json.dumps(out))

if __name__ == '__main__':
    SystemKernel().run()
"""
)


@pytest.fixture
def inference(workspace: Workspace) -> Iterator[LocalInference]:
    yield LocalInference(workspace)
    stop_service(workspace)


def started(
    inf: LocalInference,
    tmp_path: Path,
    *,
    resources: str | None = None,
    name: str = "dep",
    kernel: str = KERNEL,
    custom_args: dict[str, str] | None = None,
    secret_args: dict[str, str] | None = None,
    **policy: Any,
) -> dict[str, Any]:
    inf.deploy(
        name, make_folder(tmp_path, kernel, name=name), custom_args=custom_args, secret_args=secret_args
    )
    profile: dict[str, Any] = {"policy": {"kernel_min": 1, "kernel_max": 1, **policy}}
    if resources is not None:
        profile["resource_allocation"] = {"kernel": {"resources": resources}}
    inf.update_profile(name, profile)
    inf.start(name)
    return wait_status(inf, name, "IDLE")


# --- limits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["alloc", "alloc_in_child"])
def test_a_kernel_past_memory_allocation_is_replaced_and_its_request_fails_clearly(
    inference: LocalInference, tmp_path: Path, where: str
) -> None:
    view = started(inference, tmp_path, resources="ncpus=1,mem=150,mem_limit=150")
    (old,) = view.kernels
    with pytest.raises(InferenceError, match=r"exceeded memory_allocation \(150 MB\)") as info:
        ask(inference, do=where, mb=400)
    assert info.value.status == 500
    assert wait_for(lambda: gone(old.pid), what="the kernel to be killed")
    assert ask(inference, do="alloc", mb=20, hold=0)["pod"] != old.pod  # a fresh kernel; small is fine
    assert "exceeded memory_allocation (150 MB)" in log_text(inference)
    assert wait_status(inference, "dep", "IDLE").error is None


HUNGRY_START_KERNEL = """\
from redhareapi import Kernel
import time

class HungryKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        self.weights = b"w" * (400 << 20)  # a model too big for the deployment's memory_allocation
        time.sleep(60)

if __name__ == '__main__':
    HungryKernel().run()
"""


def test_a_kernel_past_memory_allocation_while_starting_fails_the_deployment_clearly(
    inference: LocalInference, tmp_path: Path
) -> None:
    inference.deploy("dep", make_folder(tmp_path, HUNGRY_START_KERNEL))
    inference.update_profile("dep", {"resource_allocation": {"kernel": {"resources": "mem_limit=150"}}})
    inference.start("dep")
    view = wait_status(inference, "dep", "FAILED")
    assert "exceeded memory_allocation (150 MB)" in view.error and "while starting" in view.error
    assert "exceeded memory_allocation (150 MB)" in view.error_log


def test_n_cpus_pins_each_kernel_to_its_own_cpus(inference: LocalInference, tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a machine with 2 CPUs or more")
    view = started(inference, tmp_path, resources="ncpus=1,ncpus_limit=1", kernel_min=2, kernel_max=2)
    cpus = {k.pod: k.cpus for k in view.kernels}
    assert sorted(len(c) for c in cpus.values()) == [1, 1] and len({tuple(c) for c in cpus.values()}) == 2
    out = ask(inference, do="echo")
    assert tuple(out["cpus"]) == cpus[out["pod"]]  # what the kernel itself sees


# --- process groups, orphans, death ------------------------------------------------------------------


@pytest.mark.timeout(240)  # the bug this guards against is a request that never ends
@pytest.mark.parametrize("setsid", [False, True], ids=["child-in-session", "child-left-session"])
def test_a_kernel_that_forks_and_exits_is_noticed_and_its_orphan_killed(
    inference: LocalInference, tmp_path: Path, setsid: bool
) -> None:
    view = started(inference, tmp_path, task_execution_timeout=-1)  # no timeout would ever end it
    (old,) = view.kernels
    pidfile = tmp_path / "child.pid"
    with pytest.raises(InferenceError, match=r"died \(exit code 7\)") as info:
        ask(inference, do="fork_and_exit", pidfile=str(pidfile), setsid=setsid)
    assert info.value.status == 500  # not a 504: the socket the child holds does not hide the death
    child = int(pidfile.read_text())
    assert wait_for(lambda: gone(child), what="the orphan to be killed with its kernel")
    assert ask(inference, do="echo")["pod"] != old.pod


def test_stop_kills_every_process_a_kernel_started(inference: LocalInference, tmp_path: Path) -> None:
    started(inference, tmp_path)
    pids = ask(inference, do="spawn")["pids"]
    assert not any(gone(p) for p in pids)
    inference.stop("dep")
    assert all(gone(p) for p in pids)  # the one in the kernel's session and the one that left it


def test_a_grandchild_that_left_session_and_environment_ends_with_its_kernel(
    inference: LocalInference, tmp_path: Path
) -> None:
    started(inference, tmp_path)
    shm = shm_path("kernel")
    pid = ask(inference, do="escape", shm=str(shm))["escaped"]
    assert not gone(pid) and shm.exists()
    inference.stop("dep")
    assert wait_for(lambda: gone(pid), what="the escaped grandchild to be killed")
    assert not shm.exists()  # the /dev/shm file it made went with it


def test_memory_of_a_grandchild_that_left_counts_against_memory_allocation(
    inference: LocalInference, tmp_path: Path
) -> None:
    view = started(inference, tmp_path, resources="mem=150,mem_limit=150")
    (old,) = view.kernels
    pid = ask(inference, do="escape", mb=400)["escaped"]
    assert wait_for(lambda: gone(old.pid), what="the kernel to be killed")
    assert wait_for(lambda: gone(pid), what="the grandchild to be killed with it")
    assert "exceeded memory_allocation (150 MB)" in log_text(inference)


def test_processes_of_a_killed_services_kernels_are_reaped(
    inference: LocalInference, workspace: Workspace, tmp_path: Path
) -> None:
    started(inference, tmp_path)
    pids = ask(inference, do="spawn")["pids"]
    os.kill(service_info(workspace)["pid"], signal.SIGKILL)
    wait_for(lambda: not inference.running(), what="the service to die")
    # Each kernel's reaper ends it with the service; what any left is found from the pid files.
    stop_service(workspace)
    assert wait_for(lambda: all(gone(p) for p in pids), what="the kernels' processes to be killed")


# --- environment -------------------------------------------------------------------------------------


def test_kernels_get_the_edi_and_user_environment_not_the_notebooks(
    inference: LocalInference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when a template notebook of a run started the service.
    for key, value in {
        "MLOPS_RUN_ID": "20260101-run",
        "JPY_PARENT_PID": "1",
        "MPLBACKEND": "module://inline",
        "PYDEVD_USE_FRAME_EVAL": "NO",
        "JUPYTER_PATH": "/x",
        "DB_PASSWD": "hunter2",
        "MY_ORDINARY_SETTING": "kept",
    }.items():
        monkeypatch.setenv(key, value)
    folder = make_folder(tmp_path, KERNEL, mk_environments=[{"name": "WML_SPACE_ID", "value": "space-1"}])
    inference.deploy("dep", folder)
    inference.update_profile("dep", {"kernel": {"envs": [{"name": "FROM_PROFILE", "value": "yes"}]}})
    inference.start("dep")
    view = wait_status(inference, "dep", "IDLE")
    env = ask(inference)["env"]
    for gone_name in (
        "MLOPS_RUN_ID",
        "JPY_PARENT_PID",
        "MPLBACKEND",
        "PYDEVD_USE_FRAME_EVAL",
        "JUPYTER_PATH",
        "DB_PASSWD",
        "MLOPS_HOME",
    ):
        assert gone_name not in env
    assert env["MY_ORDINARY_SETTING"] == "kept" and env["HOME"] == os.environ["HOME"]
    assert env["REDHARE_MODEL_NAME"] == "dep" and env["REDHARE_MODEL_PATH"] == view.model_path
    assert env["MSD_POD_NAME"] == view.kernels[0].pod
    assert env["WML_SPACE_ID"] == "space-1" and env["FROM_PROFILE"] == "yes"


# --- runtimes ------------------------------------------------------------------------------------------

RUNTIME_KERNEL = """\
from redhareapi import Kernel
import json, sys

class WhereKernel(Kernel):
    def on_task_invoke(self, task_context):
        try:
            import mlops_widgets
            ours = mlops_widgets.__file__
        except ImportError:
            ours = None
        task_context.set_output_data(json.dumps({"executable": sys.executable, "prefix": sys.prefix,
                                                 "mlops_widgets": ours, "greeting": GREETING}))

if __name__ == '__main__':
    WhereKernel().run()
"""


def test_a_runtime_runs_kernels_on_its_python_without_our_packages(
    inference: LocalInference, workspace: Workspace, tmp_path: Path, cli: Any
) -> None:
    venv = tmp_path / "plain-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    res = cli("runtime", "add", "plain", "--python", str(python))
    assert res.exit_code == 0, res.output
    assert "plain" in cli("runtime", "list").stdout
    inference.deploy(
        "other",
        make_folder(tmp_path, RUNTIME_KERNEL, name="other", runtime="plain"),
        custom_args={"GREETING": "hi"},
    )
    inference.deploy(
        "own",
        make_folder(tmp_path, RUNTIME_KERNEL, name="own", runtime="dlipy3"),
        custom_args={"GREETING": "hi"},
    )
    for name in ("other", "own"):
        inference.start(name)
        wait_status(inference, name, "IDLE")
    other, own = (json.loads(inference.infer(n, b"{}")) for n in ("other", "own"))
    assert other["executable"] == str(python) and other["prefix"] == str(venv)
    assert other["mlops_widgets"] is None and other["greeting"] == "hi"  # the shim alone, custom args
    assert own["executable"] == sys.executable and own["mlops_widgets"] is not None


def test_an_unknown_runtime_is_refused_at_deploy_and_at_start(
    inference: LocalInference, tmp_path: Path, cli: Any
) -> None:
    with pytest.raises(Exception, match="runtime 'nope'"):
        inference.deploy("dep", make_folder(tmp_path, KERNEL, runtime="nope"))
    assert cli("runtime", "add", "gone", "--python", sys.executable).exit_code == 0
    inference.deploy("dep", make_folder(tmp_path / "2", KERNEL, runtime="gone"))
    assert cli("runtime", "delete", "gone").exit_code == 0
    with pytest.raises(Exception, match="runtime 'gone'"):
        inference.start("dep")


def test_dlipy3_can_be_bound_to_the_users_interpreter(
    inference: LocalInference, tmp_path: Path, cli: Any
) -> None:
    """The team's and IBM's model.json files name dlipy3: binding that name to an interpreter with
    their framework runs them unchanged; deleting the binding gives the service's own back."""
    venv = tmp_path / "torch-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    res = cli("runtime", "add", "dlipy3", "--python", str(python))
    assert res.exit_code == 0, res.output
    (listed,) = [r for r in json.loads(cli("runtime", "list", "--json").stdout) if r["name"] == "dlipy3"]
    assert listed["python"] == str(python) and not listed["builtin"]
    inference.deploy(
        "team",
        make_folder(tmp_path, RUNTIME_KERNEL, name="team", runtime="dlipy3"),
        custom_args={"GREETING": "hi"},
    )
    inference.start("team")
    wait_status(inference, "team", "IDLE")
    answer = json.loads(inference.infer("team", b"{}"))
    assert answer["executable"] == str(python) and answer["mlops_widgets"] is None
    inference.stop("team")
    res = cli("runtime", "delete", "dlipy3")
    assert res.exit_code == 0 and "service's own interpreter again" in res.stdout
    (listed,) = [r for r in json.loads(cli("runtime", "list", "--json").stdout) if r["name"] == "dlipy3"]
    assert listed["python"] == sys.executable and listed["builtin"]


def test_runtime_commands_refuse_bad_input(cli: Any, tmp_path: Path) -> None:
    res = cli("runtime", "delete", "dlipy3")
    assert res.exit_code == 1 and "cannot be deleted" in res.output
    (tmp_path / "notpython").write_text("#!/bin/sh\necho hello\n")
    (tmp_path / "notpython").chmod(0o755)
    res = cli("runtime", "add", "x", "--python", str(tmp_path / "notpython"))
    assert res.exit_code == 1 and "is not a Python interpreter" in res.output
    res = cli("runtime", "add", "x", "--python", str(tmp_path / "missing"))
    assert res.exit_code == 1 and "is not an executable file" in res.output
    res = cli("runtime", "add", "bad/name", "--python", sys.executable)
    assert res.exit_code == 1 and "runtime name" in res.output
    assert cli("runtime", "add", "x", "--python", sys.executable).exit_code == 0
    res = cli("runtime", "add", "x", "--python", sys.executable)
    assert res.exit_code == 1 and "already exists" in res.output
    assert [r["name"] for r in json.loads(cli("runtime", "list", "--json").stdout)] == ["dlipy3", "x"]


# --- the kernel log ------------------------------------------------------------------------------------


def open_under(folder: Path) -> list[str]:
    """Files under `folder` this process holds open."""
    held = [os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")]
    return [f for f in held if f.startswith(str(folder))]


def test_kernel_log_rotates_and_tails_across_files(tmp_path: Path) -> None:
    log = KernelLog(
        tmp_path, secrets=[], environ={"MLOPS_KERNEL_LOG_MB": "0.1", "MLOPS_KERNEL_LOG_FILES": "3"}
    )
    for i in range(3000):
        log.feed("dep-1-abcde", f"line {i:05d} {'y' * 80}\n".encode())
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["kernels.log", "kernels.log.1", "kernels.log.2"]
    assert all(p.stat().st_size <= 0.1 * 2**20 for p in tmp_path.iterdir())
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.iterdir())
    everything = list(read_lines(tmp_path))
    assert everything[-1].startswith("[dep-1-abcde] line 02999")
    numbers = [int(line.split()[2]) for line in everything]
    assert numbers == list(range(numbers[0], 3000))  # oldest first, nothing lost between files
    assert list(read_lines(tmp_path, tail=5)) == everything[-5:]
    assert list(read_lines(tmp_path, tail=len(everything) - 3)) == everything[3:]  # across files
    assert list(read_lines(tmp_path, tail=0)) == []
    partial = read_lines(tmp_path)
    next(partial)
    partial.close()  # a reader that stops early keeps no log file open
    log.feed("dep-1-abcde", b"after the stop\n")  # a closed log takes a late line, keeps no fd
    assert not open_under(tmp_path)
    assert list(read_lines(tmp_path, tail=1)) == ["[dep-1-abcde] after the stop"]


def test_follow_sees_lines_written_after_a_rotation(tmp_path: Path) -> None:
    log = KernelLog(tmp_path, secrets=[], environ={"MLOPS_KERNEL_LOG_MB": "0.07"})
    log.feed("p", b"before\n")
    lines = read_lines(tmp_path, tail=1, follow=True)
    assert next(lines) == "[p] before"
    for i in range(1000):  # several rotations
        log.feed("p", f"after {i:04d} {'z' * 100}\n".encode())
    seen = [next(lines) for _ in range(1000)]
    lines.close()
    assert [int(s.split()[2]) for s in seen][-1] == 999 and seen[0].startswith("[p] after 0000")


def test_deploy_logs_tail_follow_and_masked_secrets(
    inference: LocalInference, workspace: Workspace, tmp_path: Path, cli: Any
) -> None:
    secret = "Sup3r/s3cret+key=="
    started(inference, tmp_path, secret_args={"API_KEY": secret})
    forms = [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode(), json.dumps(secret)]
    ask(inference, do="print", lines=[f"key is {f}" for f in forms])
    ask(inference, do="spam", n=50)
    res = cli("deploy", "logs", "--name", "dep", "--tail", "5")
    assert res.exit_code == 0 and res.stdout.splitlines()[-1].endswith("line 000049 " + "x" * 90)
    assert len(res.stdout.splitlines()) == 5
    text = log_text(inference)
    assert [line.split("key is ", 1)[1] for line in text.splitlines() if "key is" in line] == [
        MASK,
        MASK,
        MASK,
        f'"{MASK}"',
    ]
    logs = workspace.root / "inference" / "deployments" / "dep" / "logs"
    for path in logs.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert not any(f.encode() in path.read_bytes() for f in forms)

    follower = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mlops_widgets.cli import main; main()",
            "deploy",
            "logs",
            "--name",
            "dep",
            "--tail",
            "1",
            "--follow",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLOPS_HOME": str(workspace.root)},
    )
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()
        assert "line 000049" in first
        threading.Thread(
            target=ask, args=(inference,), kwargs={"do": "print", "lines": ["followed-marker"]}
        ).start()
        assert follower.stdout.readline().rstrip().endswith("followed-marker")
    finally:
        follower.kill()
        follower.wait()


@pytest.mark.parametrize("finished", [True, False])
def test_a_secret_straddling_the_line_cut_is_masked_whole(tmp_path: Path, finished: bool) -> None:
    secret = "straddling-secret-value"
    log = KernelLog(tmp_path, secrets=[secret], environ={})
    line = b"x" * (LINE_MAX - 10) + secret.encode() + b"y" * 100  # the cut falls inside the secret
    log.feed("p", line + (b"\n" if finished else b""))
    if not finished:  # an unfinished line grows past the cut, then its kernel ends
        log.feed("p", b"z" * 200_000)
        log.close_pod("p")
    log.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret[:10].encode() not in data and secret[10:].encode() not in data
    assert MASK.encode() in data


def test_kernel_log_cuts_endless_lines_and_masks_across_chunks(tmp_path: Path) -> None:
    secret = "0123456789-secret"
    log = KernelLog(tmp_path, secrets=[secret], environ={})
    log.feed("p", b"a" * 150_000)  # no newline yet: held, then cut at LINE_MAX
    log.feed("p", b"b\nkey=" + secret[:5].encode())
    log.feed("p", secret[5:].encode() + b" end")  # a secret split between two reads of the pipe
    log.close_pod("p", "[mlops] ended")
    lines = list(read_lines(tmp_path))
    assert "".join(line.removeprefix("[p] ") for line in lines[:3]) == "a" * 150_000 + "b"
    assert all(len(line) <= LINE_MAX + len("[p] ") for line in lines)
    assert lines[3:] == [f"[p] key={MASK} end", "[p] [mlops] ended"]


def test_a_reaper_whose_owner_died_before_it_started_ends_its_command(tmp_path: Path) -> None:
    # The owner wraps a long sleep, starts it and exits at once: the reaper's interpreter is still
    # starting, so its parent is already init (or a subreaper) when it first looks. Seen in the
    # wild: a reaper and its ipykernel, parent pid 1, alive an hour after their test had ended.
    pid_file = tmp_path / "pid"
    owner = (
        "import os, subprocess, sys\n"
        "from mlops_widgets.backends.local import reaper\n"
        "p = subprocess.Popen(reaper.wrap([sys.executable, '-c', 'import time; time.sleep(300)']))\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", owner], check=True, timeout=60)
    reaper_pid = int(pid_file.read_text())
    wait_for(lambda: gone(reaper_pid), timeout=60, what="the orphaned reaper to end its command and exit")
