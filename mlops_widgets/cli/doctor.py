"""`mlops doctor`: check that each Cloud Pak for Data service answers and accepts us."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlops_widgets.cli._common import echo_result


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also run the workflow's other read-only calls and write every answer, redacted, to "
    "this file in the test corpus format (see docs: adding a cluster transcript).",
)
def doctor(as_json: bool, record: Path | None) -> None:
    """Check Cloud Pak for Data from this environment: the settings, the console, sign-in,
    Watson Machine Learning and the space, WMLA (console and inference host), OpenScale and
    storage volumes; each with its version or, in plain words, what is wrong. Exit 1 when a
    check fails.

    Reads BASE_URL (or RUNTIME_ENV_APSX_URL), USER_ACCESS_TOKEN or USERNAME + APIKEY, SPACE_ID,
    WMLA_HOST, WMLA_INFERENCE_HOST and MLOPS_CPD_CA_BUNDLE; never prints a secret. With a
    record file, the answers are written with tokens and secrets dropped and names and ids
    hashed.
    """
    from mlops_widgets.app import App

    checks = App.doctor(record)
    echo_result([c.to_dict() for c in checks], as_json=as_json, text=_print_checks)
    failed = [c.service for c in checks if not c.ok]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")


def _print_checks(checks: list[dict[str, Any]]) -> None:
    width = max(len(c["service"]) for c in checks)
    for c in checks:
        click.echo(f"{'ok' if c['ok'] else 'FAIL':<4}  {c['service']:<{width}}  {c['detail']}")
