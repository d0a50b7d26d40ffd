"""JupyterLab and headless Chromium for the browser tests (the recipe and its gotchas:
../shared/reference/BROWSER-TESTS.md).

`lab_server(...)` starts JupyterLab on 127.0.0.1 with isolated config and runtime folders and
always stops it by its process group; `browser_page(...)` opens Debian's Chromium through
Playwright. On CI (MLOPS_REQUIRE_BROWSER set) a missing browser is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
TOKEN = "mlops-e2e-token"
CHROMIUM_ARGS = [
    "--no-sandbox",  # required when running as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # Docker's /dev/shm is small
]

MISSING = (
    f"{CHROMIUM} not installed (apt-get install chromium)"
    if not os.access(CHROMIUM, os.X_OK)
    else "playwright not installed (pip install -e '.[test]')"
    if importlib.util.find_spec("playwright") is None
    else None
)
if MISSING and os.environ.get("MLOPS_REQUIRE_BROWSER"):
    # CI sets MLOPS_REQUIRE_BROWSER: there the browser tests must run, never silently skip.
    raise RuntimeError(f"the browser tests cannot run: {MISSING}")
needs_browser = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(base: Path, root: Path, env: dict[str, str] | None = None) -> Iterator[dict]:
    """JupyterLab serving `root`; yields url, token, root and the log's path."""
    settings = base / "config/lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    # Pre-answer the "get notified about Jupyter news?" toast: it can cover the page.
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    port = _free_port()
    full_env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
    )
    full_env.pop("MLOPS_HOME", None)
    full_env.update(env or {})
    log_path = base / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.token={TOKEN}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
            ],  # tests switch themes through the app
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited rc={proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"jupyter lab not answering after 60 s:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.25)
            yield {"url": url, "token": TOKEN, "root": root, "log": log_path, "pid": proc.pid}
        finally:
            proc.terminate()  # the server shuts its kernels down
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers: kernels, the runner's kernels


@contextlib.contextmanager
def browser_page(profile: Path, width: int = 1280, height: int = 800) -> Iterator:
    """A fresh Chromium profile and page. Actions and `expect` assertions wait up to 30 s for
    their condition (Playwright's `expect` gives up after 5 s by default, which a loaded machine
    overruns between a click and what it shows); a test names a longer bound where it needs one."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        ctx.set_default_timeout(30_000)
        try:
            yield ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()


def page_error(error: object) -> str | None:
    """A page's uncaught error as the browser tests report it, or None for JupyterLab's own
    'Disposed' race: a SessionContext disposed while its kernel starts rejects, unhandled, from
    its `_handleSessionError` (a notebook tab closed or replaced meanwhile). Only an error with
    no frame of this extension's bundle is passed over: the panel tab ends its session only once
    the start settled (panel.ts `dispose`), so a 'Disposed' through our code is ours to fix."""
    text = str(error)
    stack = str(getattr(error, "stack", "") or "")
    if text == "Disposed" and "mlops-widgets" not in stack:
        return None
    return text + (f"\n{stack}" if stack else "")


def open_lab(page, lab, *, reset: bool = False) -> None:
    """JupyterLab open in `page` on a launcher: the layout an earlier test left closed, or with
    `reset` a fresh one (no notebook restored only to be closed while its kernel starts)."""
    from playwright.sync_api import expect

    page.goto(f"{lab['url']}/lab?{'reset&' if reset else ''}token={TOKEN}")
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
    if reset:
        page.evaluate("() => window.jupyterapp.restored")
    else:
        page.evaluate("""async () => {
            await window.jupyterapp.restored;
            await window.jupyterapp.commands.execute('application:close-all');
            await window.jupyterapp.commands.execute('launcher:create');
        }""")
        expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=60_000)
    _splash_gone(page)


def _splash_gone(page) -> None:
    """Waits for JupyterLab's splash to leave the page. Shown again while it fades (a theme
    changed within 200 ms of it), it is removed twice and JupyterLab throws 'Failed to execute
    removeChild' from its own timer: a user cannot act that fast, a test can."""
    from playwright.sync_api import expect

    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=60_000)


def show_panel(page, *, theme: str | None = None, file_browser: bool = False):
    """The MLOps panel opened and drawn in JupyterLab (open in `page`), in `theme` ("light" or
    "dark"; None: as it is), with the file browser beside it if asked; its locator."""
    from playwright.sync_api import expect

    page.evaluate(
        """async ([theme, files]) => {
        const app = window.jupyterapp;
        if (theme) {
            await app.commands.execute('apputils:change-theme',
                {theme: theme === 'dark' ? 'JupyterLab Dark' : 'JupyterLab Light'});
        }
        if (files) {
            await app.commands.execute('filebrowser:activate');
        }
        await app.commands.execute('mlops:open-panel');
    }""",
        [theme, file_browser],
    )
    _splash_gone(page)  # a theme changed shows it
    panel = page.locator(".mlops-lab-panel .mlops-panel")
    expect(panel).to_be_visible(timeout=90_000)
    return panel


# axe-core (vendored: tests/vendor/axe.min.js, MPL-2.0), WCAG 2.2 A and AA rules on one element.
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_RUN = """async el => {
  const r = await axe.run(el, {runOnly: {type: 'tag',
    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}, resultTypes: ['violations']});
  return r.violations.map(v => v.id + ': ' + v.help + ' -- ' +
    v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | '));
}"""


def axe_violations(page, locator) -> list[str]:
    """axe-core's WCAG violations inside `locator` (the script loaded into the page once)."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(AXE_RUN, locator.element_handle())


def demo_workspace(base: Path) -> Path:
    """`mlops demo` run as a user runs it (without the tests' MLOPS_HOME or backend) into
    base/mlops-demo: the workspace the browser tests' JupyterLab serves."""
    ws = base / "mlops-demo"
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_HOME", "MLOPS_BACKEND")}
    subprocess.run(
        [str(Path(sys.executable).with_name("mlops")), "demo", "--workspace", str(ws)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return ws
