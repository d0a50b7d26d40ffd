"""EDI's documents as IBM's client defines them (ibm-wmla, `ibm_wmla.wmla_api_edi_v2`), and
what our Inference protocol makes of them.

Model documents go through the client's own class (`Model.from_dict`), which accepts the
recorded real answer. Instance documents do not: IBM's `ModelInstance` requires `instances`,
which a real cluster leaves out right after a start (tests/data/cluster_answers, recorded from
IBM's MNIST tutorial), so they are read here, requiring only `name` and `state`.

A model has no state; its instance has (`GET /dlim/v1/model/{name}/instance`). As recorded:
after a start the state is `not-available` (no `instances`) for a few seconds, then `enabled`;
after a stop it stays `enabled` for a few seconds, then `disabled`. So `not-available` means
starting, and only `disabled` means stopped. A model that has no instance at all (404: never
started) is stopped too.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_widgets.errors import MlopsError


def _models() -> Any:
    from ibm_wmla import wmla_api_edi_v2

    return wmla_api_edi_v2


def result_json(detailed: Any) -> Any:
    """A DetailedResponse's body as JSON: the SDK parses JSON content types only and WMLA
    labels its JSON text/plain, in which case the result is the raw response."""
    result = detailed.get_result() if hasattr(detailed, "get_result") else detailed
    if hasattr(result, "content") and hasattr(result, "status_code"):
        try:
            return json.loads(result.content or b"null")
        except ValueError:
            raise MlopsError(f"WMLA answered with a body that is not JSON: {result.text[:200]!r}") from None
    return result


def parse_model(raw: Any, what: str) -> dict[str, Any]:
    """A model document reduced to the fields of IBM's `Model`."""
    try:
        return _models().Model.from_dict(raw).to_dict()
    except (ValueError, TypeError, AttributeError) as exc:
        raise MlopsError(f"{what}: WMLA answered a model document this client cannot read ({exc})") from None


def parse_instance(raw: Any, what: str) -> dict[str, Any]:
    """An instance document: `name` and `state` required, `instances` when WMLA sends them
    (it does not while a deployment is starting)."""
    if not isinstance(raw, dict):
        raise MlopsError(f"{what}: WMLA answered an instance document this client cannot read ({raw!r:.100})")
    for key in ("name", "state"):
        if not isinstance(raw.get(key), str):
            raise MlopsError(
                f"{what}: WMLA answered an instance document this client cannot read "
                f"(required property {key!r} missing)"
            )
    items = raw.get("instances")
    return {
        "name": raw["name"],
        "state": raw["state"],
        "instances": [i for i in items if isinstance(i, dict)] if isinstance(items, list) else [],
    }
