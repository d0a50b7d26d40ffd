"""The MLOps panel's open time, beside a plain ipywidgets output measured in the same run.

In the browser (`--browser`): JupyterLab and headless Chromium (tests/_jlab.py), the panel opened
by its command on a fresh kernel each time, timed from the command to its frame (title and tab
names on screen; target under 1 s) and to ready (its forms drawn and the workspace's entries
listed; target under 3 s); the baseline is a notebook in the same JupyterLab whose one cell
shows a Tab of about the panel's number of widget models, timed from opening it to its kernel
idle and, after Run All, to the widgets shown.

In-process (default), the build without a browser:

Each figure is the median over fresh interpreters (an import is only cold once per process):
- baseline: `import ipywidgets` + a Tab with 5 empty VBox children;
- panel: `from mlops_widgets import MLOpsPanel` + `MLOpsPanel(workspace=...)` (the frame and
  the first tab, Prepare; the others are built when first shown; nothing is queried).
Reported separately: the import, the build after the import (target: under 1 s) and their
sum, plus the heavy modules the panel must not import to render (papermill, nbformat, numpy).
No kernel is attached: building widgets here is what `display()` then serializes.

Run: .venv/bin/python benchmarks/bench_panel.py [--repeat 7] [--browser]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BASELINE = """
import json, sys, time
t0 = time.perf_counter()
import ipywidgets as w
t1 = time.perf_counter()
tab = w.Tab(children=[w.VBox() for _ in range(5)], titles=["a", "b", "c", "d", "e"])
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "build": t2 - t1, "heavy": []}))
"""

PANEL = """
import json, sys, time
t0 = time.perf_counter()
from mlops_widgets import MLOpsPanel
t1 = time.perf_counter()
panel = MLOpsPanel(workspace=sys.argv[1])
t2 = time.perf_counter()
assert len(panel.tabs.children) == 6 and len(panel.ctx.tabs) == 1  # the others: when shown
heavy = [m for m in ("papermill", "nbformat", "nbclient", "numpy", "PIL") if m in sys.modules]
print(json.dumps({"import": t1 - t0, "build": t2 - t1, "heavy": heavy}))
"""


def _run(code: str, repeat: int, *args: str) -> dict[str, float | list[str]]:
    samples = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
        samples.append(json.loads(out.stdout))
    return {
        "import": statistics.median(s["import"] for s in samples),
        "build": statistics.median(s["build"] for s in samples),
        "total": statistics.median(s["import"] + s["build"] for s in samples),
        "heavy": sorted({m for s in samples for m in s["heavy"]}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--browser", action="store_true", help="open the panel in JupyterLab (Chromium)")
    args = parser.parse_args()
    if args.browser:
        _browser(args.repeat)
        return
    with tempfile.TemporaryDirectory() as ws:
        base = _run(BASELINE, args.repeat)
        panel = _run(PANEL, args.repeat, ws)
    print(f"first render, median of {args.repeat} fresh interpreters (ms)")
    print(f"{'':18}{'bare Tab (5 empty)':>20}{'MLOpsPanel':>14}{'ratio':>9}")
    for key, label in (("import", "import"), ("build", "build (1st tab)"), ("total", "import + build")):
        b, p = base[key] * 1000, panel[key] * 1000
        print(f"{label:18}{b:20.1f}{p:14.1f}{p / b:8.1f}x")
    verdict = "ok" if panel["build"] < 1.0 else "OVER"
    print(
        f"target: build after the import < 1000 ms: {panel['build'] * 1000:.0f} ms ({verdict}); "
        f"import + build {panel['total'] * 1000:.0f} ms"
    )
    heavy = ", ".join(panel["heavy"]) or "none"
    print(f"heavy modules imported by the panel: {heavy} (want none of papermill, nbformat, numpy)")


# -- in the browser: the panel opened in JupyterLab, beside a plain ipywidgets output ------------

# The same-run baseline: a notebook whose one cell shows a Tab of about the panel's size in
# widget models (270 Text fields in 6 tabs: ~830 models with their layouts and styles).
BASELINE_CELL = (
    "import ipywidgets as w\n"
    "w.Tab(children=[w.VBox([w.Text(description=f'field {i}') for i in range(45)]) for _ in range(6)],\n"
    "      titles=[f'tab {t}' for t in range(6)])"
)

PANEL_OPEN = """() => { window.__mlopsT0 = performance.now();
    window.jupyterapp.commands.execute('mlops:open-panel'); }"""
# Frame: the panel's title and tab names on screen. Ready: its forms usable (Stage drawn) and
# its first state read (the staged entries listed under "Edit a staged entry").
PANEL_FRAME = """() => { const p = document.querySelector('.mlops-lab-panel');
    return p && p.querySelector('.mlops-frame-tab, .mlops-tabs .lm-TabBar-tab')
      ? performance.now() - window.__mlopsT0 : false; }"""
PANEL_READY = """() => { const p = document.querySelector('.mlops-lab-panel');
    return p && p.querySelector('button.mlops-stage') && p.querySelector('.mlops-entry-pick option')
      ? performance.now() - window.__mlopsT0 : false; }"""
NOTEBOOK_OPEN = """(path) => { window.__mlopsT0 = performance.now();
    window.jupyterapp.commands.execute('docmanager:open', { path }); }"""
NOTEBOOK_IDLE = """() => { const s = document.querySelector('#jp-main-statusbar');
    return s && /^(?!No Kernel).+ \\| Idle$/m.test(s.innerText) ? performance.now() - window.__mlopsT0 : false; }"""
NOTEBOOK_SHOWN = """() => { const t = document.querySelector('.jp-Notebook .widget-tab');
    return t && t.querySelectorAll('.widget-text').length >= 45 ? performance.now() - window.__mlopsT0 : false; }"""
CLOSE_ALL = """async () => { const app = window.jupyterapp;
    for (const w of [...app.shell.widgets('main')]) {  // unsaved outputs: dropped, not asked about
        if (w.context) { w.context.model.dirty = false; } w.dispose(); }
    await app.serviceManager.sessions.refreshRunning();
    for (const s of [...app.serviceManager.sessions.running()]) {
        await app.serviceManager.sessions.shutdown(s.id); } }"""


def _notebook(path: Path) -> None:
    cell = {"cell_type": "code", "execution_count": None, "id": "c", "metadata": {}, "outputs": []}
    nb = {
        "cells": [{**cell, "source": BASELINE_CELL}],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


def _browser(repeat: int) -> None:
    """Open the panel `repeat` times (each on a fresh kernel) and the baseline notebook as often,
    alternating, in one JupyterLab; print the medians."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from _jlab import MISSING, TOKEN, browser_page, lab_server

    if MISSING:
        raise SystemExit(f"the browser figures need {MISSING}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ws, root = base / "ws", base / "files"
        root.mkdir()
        _notebook(root / "baseline.ipynb")
        entries = base / "entries.yml"
        subprocess.run([sys.executable, "-c", ENTRY, str(entries)], check=True)
        mlops = str(Path(sys.executable).with_name("mlops"))
        subprocess.run(
            [mlops, "--workspace", str(ws), "config", "add", "--path-yml", str(entries)], check=True
        )
        panel: dict[str, list[float]] = {"frame": [], "ready": []}
        notebook: dict[str, list[float]] = {"kernel": [], "shown": []}
        with (
            lab_server(base, root, env={"MLOPS_HOME": str(ws)}) as lab,
            browser_page(base / "profile") as page,
        ):
            page.goto(f"{lab['url']}/lab?token={TOKEN}")
            page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
            page.evaluate("async () => { await window.jupyterapp.restored; }")
            page.evaluate(CLOSE_ALL)

            def until(check: str) -> float:
                try:
                    return float(page.wait_for_function(check, timeout=120_000, polling="raf").json_value())
                except Exception:
                    page.screenshot(path=str(Path(tempfile.gettempdir()) / "bench_panel-timeout.png"))
                    raise

            for _ in range(repeat + 1):  # the first of each warms the browser's caches: not counted
                page.evaluate(PANEL_OPEN)
                frame = until(PANEL_FRAME)
                ready = until(PANEL_READY)
                page.evaluate(CLOSE_ALL)
                page.evaluate(NOTEBOOK_OPEN, "baseline.ipynb")
                idle = until(NOTEBOOK_IDLE)
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                shown = until(NOTEBOOK_SHOWN)
                page.evaluate(CLOSE_ALL)
                for key, value in (("frame", frame), ("ready", ready)):
                    panel[key].append(value / 1000)
                for key, value in (("kernel", idle), ("shown", shown)):
                    notebook[key].append(value / 1000)
    med = {k: statistics.median(v[1:]) for k, v in {**panel, **notebook}.items()}
    print(f"in JupyterLab + headless Chromium, median of {repeat} opens after one warm-up (s)")
    print(
        f"  baseline notebook (Tab of 270 Text fields): kernel idle {med['kernel']:.2f}, widgets shown {med['shown']:.2f}"
    )
    print(f"  MLOps panel: frame {med['frame']:.2f} (target < 1), ready {med['ready']:.2f} (target < 3)")
    print(
        "  every panel open (frame/ready): "
        + ", ".join(f"{f:.2f}/{r:.2f}" for f, r in zip(panel["frame"], panel["ready"], strict=True))
    )


ENTRY = """
import sys
from pathlib import Path
import mlops_widgets
from mlops_widgets.config import dump_yaml, load_config
(entry,) = load_config(Path(mlops_widgets.__file__).parent / "examples/deployment_metadata.yml", with_key=False).entries.values()
Path(sys.argv[1]).write_text(dump_yaml({"bench-asset": entry}))
"""


if __name__ == "__main__":
    main()
