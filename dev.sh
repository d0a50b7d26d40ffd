#!/usr/bin/env bash
# Set-up and the jobs of the README: `bash dev.sh demo` and `bash dev.sh test`; also
# `bash dev.sh test-fast` (the unit tier), `bash dev.sh test-under-load [N]` (the suite N times
# with a CPU-burning process per core beside it) and `bash dev.sh docs` (the documentation site).
# Each creates (or reuses) .venv in this folder and installs the package into it first.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
# pip install, skipped when the same install was done with the same pyproject.toml and extension
# build (an editable install follows code changes by itself): a warm start of test-fast.
pip_install() {
  local key
  key=$(cat pyproject.toml mlops_widgets/labextension/sources.sha256 <(echo "$@") | sha256sum | cut -c1-16)
  [ -f ".venv/.installed-$key" ] && return 0
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"
  touch ".venv/.installed-$key"
}

job=${1:-}
shift || true
case "$job" in
  demo)
    pip_install -e '.[lab]'
    exec .venv/bin/mlops demo "$@"
    ;;
  docs)
    pip_install -e '.[docs]'
    exec .venv/bin/python -m sphinx -W --keep-going -n -b html docs docs/_build/html "$@"
    ;;
  test-fast)
    pip_install -e '.[test,cpd,lab,docs]'
    exec .venv/bin/python -m pytest -m unit -q "$@"
    ;;
  test-under-load)
    runs=1  # how many runs in a row: an optional first argument
    if [[ ${1:-} =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
    ;&  # then as `test`, pytest alone
  test)
    pip_install -e '.[test,cpd,lab,docs]'
    # The browser test drives Debian's Chromium (test tools cannot download browsers here).
    if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "installing chromium for the browser test..." >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "chromium could not be installed: the browser test will be skipped" >&2
    fi
    # On CI (CI=true) the browser test must run, never skip.
    [ "${CI:-}" = true ] && export MLOPS_REQUIRE_BROWSER=1
    # Lint, format, the declared dependencies, types and the extension's checks are part of the suite
    # (only when running the whole suite, not a chosen test).
    if [ $# -eq 0 ] && [ "$job" = test ]; then
      .venv/bin/ruff check .
      .venv/bin/ruff format --check .
      .venv/bin/deptry .
      .venv/bin/mypy  # [tool.mypy] in pyproject.toml: the package, no error
      # The extension's TypeScript: eslint, prettier and its jest tests, where Node is installed
      # (npm ci again whenever package-lock.json is newer than the installed tree).
      if command -v npm >/dev/null 2>&1; then
        (
          cd labextension
          [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
          npm run --silent lint && npm test --silent
        )
      else
        echo "npm not found: the extension's lint and jest tests are skipped" >&2
      fi
    fi
    if [ $# -eq 0 ]; then
      # The real DeepLIIF network's runtime (CPU torch + deepliif), for tests/test_deepliif.py.
      if [ ! -x .venv-deepliif/bin/python ]; then
        echo "making the DeepLIIF runtime .venv-deepliif..." >&2
        bash tools/make_deepliif_runtime.sh .venv-deepliif \
          || { [ "${CI:-}" != true ] && echo "no DeepLIIF runtime: its test will be skipped" >&2; } \
          || exit 1
      fi
    fi
    [ "$job" = test ] && exec .venv/bin/python -m pytest "$@"
    # Under load: the whole session beside a burning process per core (--cpu-burn, tests/conftest.py),
    # run after run, stopping at the first that fails.
    for run in $(seq "$runs"); do
      echo "test-under-load: run $run of $runs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
      .venv/bin/python -m pytest --cpu-burn "$@" || { echo "test-under-load: run $run of $runs failed" >&2; exit 1; }
    done
    ;;
  *)
    echo "usage: bash dev.sh demo [--workspace DIR] | bash dev.sh test [PYTEST ARGS] | bash dev.sh test-fast" \
      "| bash dev.sh test-under-load [N] [PYTEST ARGS] | bash dev.sh docs" >&2
    exit 2
    ;;
esac
