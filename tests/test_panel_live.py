"""The panel follows the workspace's change feed and runs steps side by side.

In a kernel the panel is built on the kernel's event loop, which keeps running afterwards (clicks
and comm messages are handled there). `asyncio.run` plays that part here: the panel built inside
it follows the feed, and what the CLI changes (another process) shows in the open panel with no
Refresh. Steps that do not conflict run together; a conflicting one says which step blocks it;
N steps leave the process's threads and open files as they were.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import submit_args, wait_for

from mlops_widgets.app import DeploymentRow
from mlops_widgets.backends.training_protocol import JOB_ENDED
from mlops_widgets.config import dump_yaml, load_config
from mlops_widgets.widgets import MLOpsPanel
from mlops_widgets.widgets._task import ORIGIN, deployment_key
from mlops_widgets.widgets.panel import _path_to

WAIT_S = 120  # bounds a hang only
MLOPS = str(Path(sys.executable).with_name("mlops"))


def txt(widget: Any) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


async def until(check: Callable[[], Any], what: str) -> None:
    """Let the loop run (as a kernel's does between messages) until `check()` holds."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"the panel never showed {what}"
        await asyncio.sleep(0.05)


async def mlops(workspace: Any, *args: str) -> str:
    """The CLI, as another process: what it changes reaches the panel only through the feed."""
    proc = await asyncio.create_subprocess_exec(
        MLOPS,
        "--workspace",
        str(workspace.root),
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


def test_the_open_panel_shows_what_the_cli_changes_without_refresh(workspace: Any, tmp_path: Path) -> None:
    (entry,) = load_config(
        Path(__file__).parent.parent / "mlops_widgets/examples/deployment_metadata.yml", with_key=False
    ).entries.values()
    keyed = tmp_path / "entries.yml"
    keyed.write_text(dump_yaml({"asset-from-cli": entry}))
    script = tmp_path / "short.py"
    script.write_text("import time\nprint('training')\ntime.sleep(1)\n")

    async def main() -> None:
        panel = MLOpsPanel(workspace=workspace)
        try:
            assert panel.live is not None  # built on a running loop, as in a kernel: it follows
            editor = panel.prepare.editor
            await until(lambda: "nothing staged yet" in txt(editor.edit.reason), "its first state")

            # "Edit a staged entry" sees an entry added from the CLI.
            await mlops(workspace, "config", "add", "--path-yml", str(keyed))
            await until(
                lambda: "asset-from-cli" in [v for _, v in editor.pick.options],
                "the entry added from the CLI",
            )
            assert not editor.edit.disabled

            # A training job submitted and ended elsewhere shows ended, with Stop disabled.
            panel.show("Train")
            out = await mlops(
                workspace,
                *submit_args(script),
            )
            job_id = next(w for w in out.split() if w.startswith("train-")).rstrip(":")
            train = panel.train
            await until(lambda: any(j.id == job_id for j in train.jobs), "the submitted job")
            train.pick.value = job_id
            await until(lambda: getattr(train._job(), "state", None) in JOB_ENDED, "the job's end")
            assert train.stop.disabled and "pick a running job" in txt(train.stop.reason)
            # The Runs tab lists the CLI's runs (it was never shown: loaded by the first step).
            assert panel.runs.loaded or panel.runs.runs == []
        finally:
            panel.close()
        assert panel.live is not None and not panel.live._thread.is_alive()  # closing ends the reader

    asyncio.run(main())


def test_steps_that_do_not_conflict_run_together_and_a_blocked_one_names_its_blocker(workspace: Any) -> None:
    panel = MLOpsPanel(workspace=workspace)
    ctx, deploy = panel.ctx, panel.deploy
    deploy.deployments = [DeploymentRow(n, "started", "IDLE", 1, None, None, None) for n in ("a", "b")]
    deploy.target.show([{"id": n, "name": n} for n in ("a", "b")], "b")
    gate = threading.Event()

    def held(_progress: Any) -> str:
        assert gate.wait(WAIT_S)
        return "done"

    token = ORIGIN.set(deploy.stop.widget)
    try:
        ctx.run_call("Evaluate a", held, keys={deployment_key("a")})
    finally:
        ORIGIN.reset(token)
    token = ORIGIN.set(panel.monitor.run_now.widget)
    try:
        ctx.run_call("Evaluate b", held, keys={deployment_key("b")})  # another deployment: at once
    finally:
        ORIGIN.reset(token)
    try:
        assert sorted(bar.running for bar in ctx.tasks.running) == ["Evaluate a", "Evaluate b"]
        # Each step's progress sits beside the control that started it.
        bars = {bar.running: bar.widget for bar in ctx.tasks.running}
        assert _path_to(deploy.widget, bars["Evaluate a"]) and _path_to(
            panel.monitor.widget, bars["Evaluate b"]
        )
        deploy.target.value = "a"
        deploy.update_actions()
        assert deploy.stop.disabled
        assert "wait for \u201cEvaluate a\u201d to end, or press Cancel beside it" in txt(deploy.stop.reason)
        # A step on another deployment, or one on nothing running, is not blocked by it.
        assert ctx.busy_reason({deployment_key("c")}) is None
        assert "Evaluate b" in (ctx.busy_reason({deployment_key("b")}) or "")
        # Anything that does not say what it works on waits for every step.
        assert ctx.busy_reason() is not None
    finally:
        gate.set()
    assert panel.wait(WAIT_S)
    assert ctx.busy_reason({deployment_key("a")}) is None
    deploy.update_actions()
    assert "wait for" not in txt(deploy.stop.reason)


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_steps_leave_the_kernels_threads_and_open_files_as_they_were(workspace: Any) -> None:
    """Each step runs in a thread of its own that opens a backend and, through jupyter_client's
    blocking calls, an event loop: closed when the step ends, not left for the collector."""
    from mlops_widgets.runner import warm

    panel = MLOpsPanel(workspace=workspace)
    warm.keep_spare(False)  # no spare kernel starting in the background between the counts

    def template_run() -> None:
        panel.monitor.provider_name.value = "Leak Check"
        panel.monitor.start_provider()
        assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value

    template_run()  # the first one imports and opens what stays for the process's life
    threads, files = _settled()
    for _ in range(3):
        template_run()
    # What a step closes may close a moment after it ends (its kernel's channels, under load);
    # a leak stays.
    wait_for(
        lambda: threading.active_count() <= threads and _open_files() <= files,
        timeout=60,
        what=f"threads and open files back to {threads} and {files} (a step left some open)",
    )


def _settled() -> tuple[int, int]:
    """The process's threads and open files once they stop falling (what the last step closes
    is closed), sampled 0.5 s apart, at most 60 s."""
    last, same, deadline = (-1, -1), 0, time.monotonic() + 60
    while same < 3 and time.monotonic() < deadline:
        now = (threading.active_count(), _open_files())
        same = same + 1 if now == last else 0
        last = now
        time.sleep(0.5)
    return last


def test_the_panel_builds_a_tab_when_first_shown_and_its_frame_names_them_all(workspace: Any) -> None:
    from mlops_widgets.widgets.panel import TABS

    panel = MLOpsPanel(workspace=workspace, follow=False)
    assert [t.title for t in panel.ctx.tabs] == ["Prepare"]  # the others wait until shown
    assert [panel.tabs.get_title(i) for i in range(len(TABS))] == list(TABS)
    panel.show("Deploy")
    assert [t.title for t in panel.ctx.tabs] == ["Prepare", "Deploy"] and panel.deploy.loaded
    assert panel.deploy.deployments == [] and panel.deploy.target.options == ()  # listed: none yet
    # The extension draws the same tab names as the panel's frame while the kernel starts.
    source = (Path(__file__).parent.parent / "labextension/src/panel.ts").read_text()
    drawn = re.search(r"PANEL_TABS = \[(.*?)\]", source)
    assert drawn and re.findall(r"'([^']+)'", drawn.group(1)) == list(TABS)
