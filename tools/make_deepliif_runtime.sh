#!/usr/bin/env bash
# Create a Python runtime that serves the DeepLIIF network: CPU torch and the `deepliif` package's
# network code, without the package's pinned whole-slide stack (old torch, numba, Java's
# bioformats), which inference of a tile does not use.
#
#   bash tools/make_deepliif_runtime.sh [DEST]        # default: .venv-deepliif in this repo
#   .venv/bin/mlops runtime add dlipy3 --python DEST/bin/python
#
# TORCH_SPEC chooses torch (default torch==2.13.0, a CPU build where pip has one at hand; elsewhere
# e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu").
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.venv-deepliif}
python=${PYTHON:-python3}
[ -x "$dest/bin/python" ] || "$python" -m venv "$dest"
pip() { "$dest/bin/python" -m pip install --quiet --disable-pip-version-check "$@"; }
# shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
pip ${TORCH_SPEC:-torch==2.13.0}
pip numpy pillow opencv-python-headless scikit-image
pip --no-deps deepliif
"$dest/bin/python" - <<'PY'
import importlib.util, sys
sys.path.insert(0, "mlops_widgets/examples/deepliif_kernel")
import deepliif_networks
deepliif_networks.load()
print("DeepLIIF runtime ready:", sys.executable)
PY
