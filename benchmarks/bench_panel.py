"""The MLOps panel's first render, beside a bare ipywidgets Tab, measured in the same run.

Each figure is the median over fresh interpreters (an import is only cold once per process):
- baseline: `import ipywidgets` + a Tab with 5 empty VBox children;
- panel: `from mlops_widgets import MLOpsPanel` + `MLOpsPanel(workspace=...)` (all five tabs
  built, Prepare holding the form; lists load when a tab is first shown, so nothing is queried).
Reported separately: the import, the build after the import (target: under 1 s) and their
sum, plus the heavy modules the panel must not import to render (papermill, nbformat, numpy).
No kernel is attached: building widgets here is what `display()` then serializes.

Run: .venv/bin/python benchmarks/bench_panel.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

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
assert len(panel.tabs.children) == len(panel.ctx.tabs)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as ws:
        base = _run(BASELINE, args.repeat)
        panel = _run(PANEL, args.repeat, ws)
    print(f"first render, median of {args.repeat} fresh interpreters (ms)")
    print(f"{'':18}{'bare Tab (5 empty)':>20}{'MLOpsPanel':>14}{'ratio':>9}")
    for key, label in (("import", "import"), ("build", "build (all tabs)"), ("total", "import + build")):
        b, p = base[key] * 1000, panel[key] * 1000
        print(f"{label:18}{b:20.1f}{p:14.1f}{p / b:8.1f}x")
    verdict = "ok" if panel["build"] < 1.0 else "OVER"
    print(
        f"target: build after the import < 1000 ms: {panel['build'] * 1000:.0f} ms ({verdict}); "
        f"import + build {panel['total'] * 1000:.0f} ms"
    )
    heavy = ", ".join(panel["heavy"]) or "none"
    print(f"heavy modules imported by the panel: {heavy} (want none of papermill, nbformat, numpy)")


if __name__ == "__main__":
    main()
