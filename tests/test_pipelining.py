"""Payload pipelining (issue 27 item 3): a busy kernel gets its next tasks while it works on the
current one, at most task_pipe_size ahead, once the pool cannot grow; answers keep their
requests; a timeout or a kernel's death fails the task it ran and sends the ones behind it to
the next kernel (once); a stop answers every waiting caller. Nothing here is timed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import deploy_started, make_folder, wait_for

from mlops_widgets.backends.local.inference import InferenceError, LocalInference, stop_service
from mlops_widgets.workspace import Workspace

# Every task waits for the gate file, then answers its id (or dies, or sleeps past the timeout).
GATED_KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import json, os, time

class GatedKernel(Kernel):
    def on_task_invoke(self, task_context):
        req = json.loads(task_context.get_input_data())
        while not os.path.exists(req["gate"]):
            time.sleep(0.005)
        if req.get("die"):
            os._exit(3)
        time.sleep(req.get("sleep", 0))
        task_context.set_output_data(json.dumps({"id": req["id"], "pod": os.environ["MSD_POD_NAME"]}))

if __name__ == '__main__':
    GatedKernel().run()
"""


@pytest.fixture
def inference(workspace: Workspace) -> Iterator[LocalInference]:
    yield LocalInference(workspace)
    stop_service(workspace)


def started(inference: LocalInference, tmp_path: Path, **policy: Any) -> Path:
    """One kernel at most, two tasks ahead; the gate file all tasks wait for."""
    policy = {"kernel_min": 1, "kernel_max": 1, "task_pipe_size": 2, **policy}
    deploy_started(inference, make_folder(tmp_path, GATED_KERNEL), **policy)
    return tmp_path / "gate"


class Callers:
    """Requests sent each from a thread of its own; `results` in sending order."""

    def __init__(self, inference: LocalInference, gate: Path) -> None:
        self.inference, self.gate = inference, gate
        self.threads: list[threading.Thread] = []
        self.results: list[Any] = []

    def send(self, **req: Any) -> None:
        index = len(self.results)
        self.results.append(None)
        body = json.dumps({"gate": str(self.gate), "id": index, **req}).encode()

        def call() -> None:
            try:
                self.results[index] = json.loads(self.inference.infer("dep", body))
            except InferenceError as exc:  # asserted by the test
                self.results[index] = exc

        thread = threading.Thread(target=call)
        thread.start()
        self.threads.append(thread)

    def wait(self) -> list[Any]:
        for thread in self.threads:
            thread.join(300)
        assert not any(t.is_alive() for t in self.threads), "a caller still waits for its answer"
        return self.results


def placed(inference: LocalInference, queued: int, requests: int) -> Callable[[], bool]:
    """The kernel runs a task, `requests` arrived and `queued` of them wait in the queue."""

    def check() -> bool:
        view = inference.view("dep")
        busy = any(k.state == "busy" for k in view.kernels)
        return busy and view.queued == queued and view.requests["total"] == requests

    return check


def test_a_busy_kernel_holds_task_pipe_size_tasks_ahead_and_answers_each_its_own(
    inference: LocalInference, tmp_path: Path
) -> None:
    gate = started(inference, tmp_path)
    callers = Callers(inference, gate)
    callers.send()
    wait_for(placed(inference, 0, 1), what="the first task to run")
    for _ in range(5):
        callers.send()
    # Two of the five went to the kernel while it runs the first; three wait in the queue.
    wait_for(placed(inference, 3, 6), what="two tasks ahead in the kernel's pipe")
    gate.touch()
    results = callers.wait()
    assert [r["id"] for r in results] == list(range(6))
    assert len({r["pod"] for r in results}) == 1


def test_the_tasks_behind_one_past_its_timeout_run_on_the_next_kernel(
    inference: LocalInference, tmp_path: Path
) -> None:
    gate = started(inference, tmp_path, task_execution_timeout=10)
    gate.touch()
    callers = Callers(inference, gate)
    callers.send(sleep=60)
    wait_for(placed(inference, 0, 1), what="the slow task to run")
    callers.send()
    callers.send()
    wait_for(placed(inference, 0, 3), what="two tasks behind it in the pipe")
    slow, *rest = callers.wait()
    assert isinstance(slow, InferenceError) and slow.status == 504
    assert "task_execution_timeout (10 s)" in str(slow)
    assert [r["id"] for r in rest] == [1, 2]
    first_pod = str(slow).split("on kernel ")[1].split()[0]
    assert all(r["pod"] != first_pod for r in rest)  # the replacement ran them


def test_a_kernel_dying_with_tasks_in_its_pipe_fails_only_its_task(
    inference: LocalInference, tmp_path: Path
) -> None:
    gate = started(inference, tmp_path)
    callers = Callers(inference, gate)
    callers.send(die=True)
    wait_for(placed(inference, 0, 1), what="the fatal task to run")
    callers.send()
    callers.send()
    callers.send()
    wait_for(placed(inference, 1, 4), what="two tasks in the pipe, one queued")
    gate.touch()
    dead, *rest = callers.wait()
    assert isinstance(dead, InferenceError) and dead.status == 500
    assert "died (exit code 3) while running this task" in str(dead)
    assert [r["id"] for r in rest] == [1, 2, 3]
    assert inference.view("dep").status in ("IDLE", "BUSY")  # a request killed it: not failed


def test_tasks_sent_to_two_dying_kernels_in_a_row_fail_and_nothing_hangs(
    inference: LocalInference, tmp_path: Path
) -> None:
    gate, later = started(inference, tmp_path), tmp_path / "later"
    callers = Callers(inference, gate)
    callers.send(die=True)
    wait_for(placed(inference, 0, 1), what="the fatal task to run")
    first_pod = next(k.pod for k in inference.view("dep").kernels)
    # Each caller sends from a thread of its own: the third is sent once the second is in the
    # pipe, so that the two reach the service in this order.
    callers.send(die=True, gate=str(later))
    wait_for(placed(inference, 0, 2), what="the second task in the pipe")
    callers.send()
    wait_for(placed(inference, 0, 3), what="two tasks in the pipe")
    gate.touch()

    def on_the_next_kernel() -> bool:
        kernels = inference.view("dep").kernels
        return callers.results[0] is not None and any(
            k.state == "busy" and k.pod != first_pod for k in kernels
        )

    wait_for(on_the_next_kernel, what="the two tasks sent back to run on the next kernel")
    wait_for(placed(inference, 0, 3), what="the third task in the next kernel's pipe")
    later.touch()
    first, second, third = callers.wait()
    assert all(isinstance(r, InferenceError) and r.status == 500 for r in (first, second, third))
    assert "died (exit code 3) while running this task" in str(first)
    assert "died (exit code 3) while running this task" in str(second)  # it ran on the next kernel
    assert "ended before running this task" in str(third)  # sent back once only


def test_a_stop_answers_the_running_the_pipelined_and_the_queued_tasks(
    inference: LocalInference, tmp_path: Path
) -> None:
    gate = started(inference, tmp_path)
    callers = Callers(inference, gate)
    for _ in range(4):
        callers.send()
    wait_for(placed(inference, 1, 4), what="one task running, two in the pipe, one queued")
    inference.stop("dep")
    results = callers.wait()
    assert all(isinstance(r, InferenceError) and r.status == 503 for r in results), results
