"""The contract every answer of the fake (and every recorded answer) must keep, for each
endpoint family our code calls: WML v4, CAMS assets and attachments, storage volumes, WMLA execs,
sign-in, version, EDI (`/dlim/v1`) and OpenScale.

A rule names the answer (method, path pattern), the status a success has, and what the body
must hold: a JSON schema written from the recorded answers (tests/data/cluster_answers) where
there are recordings, else from what IBM's SDKs read (reference/CPD-SDKs.md), and IBM's own
class where one is declared for the result. Where IBM's class contradicts a recording (EDI's
`ModelInstance` and `ModelAppProfile` reject real answers) the recording wins: the rule has no
class and `CONTRADICTED` says why (a test keeps that true).

A schema's `required` lists hold at least every field our client code reads, so that a field
renamed or dropped in the fake fails the contract (tests/test_cpd_contract.py mutates each).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

OS = r"/openscale/00000000-0000-0000-0000-000000000000/v2"
ID = r"[^/]+"
EXEC_STATE = r"^(NEW|SUBMITTED|PENDING_[A-Z_]+|LAUNCHING|RUNNING|RECOVERING|FINISHED|KILLED|ERROR)$"
EDI_STATES = ["not-available", "enabled", "disabled"]


def S(spec: Any) -> dict[str, Any]:
    """A JSON schema from a compact spec: a type, [item spec], {key: spec} (a key ending in `?`
    is optional), a set of allowed strings, a regex string ("re:..."), or a schema dict ("$")."""
    if spec is str:
        return {"type": "string"}
    if spec is int:
        return {"type": "integer"}
    if spec is float:
        return {"type": "number"}
    if spec is bool:
        return {"type": "boolean"}
    if spec is list:
        return {"type": "array"}
    if spec is dict:
        return {"type": "object"}
    if isinstance(spec, str) and spec.startswith("re:"):
        return {"type": "string", "pattern": spec[3:]}
    if isinstance(spec, (set, frozenset)):
        return {"enum": sorted(spec)}
    if isinstance(spec, list):
        return {"type": "array", "items": S(spec[0])}
    if isinstance(spec, dict) and "$" in spec:
        return spec["$"]
    if isinstance(spec, dict):
        return {
            "type": "object",
            "required": [k for k in spec if not k.endswith("?")],
            "properties": {k.rstrip("?"): S(v) for k, v in spec.items()},
        }
    raise TypeError(spec)


# -- schemas -----------------------------------------------------------------------------------

# EDI, as recorded (edi-*.json)
EDI_MODEL = {
    "name": str,
    "kernel_path": str,
    "create_time": int,
    "last_updated_time": int,
    "attributes": list,
}
EDI_INSTANCE = {
    "name": str,
    "state": set(EDI_STATES),
    "instances?": [{"pending_tasks": int, "isd_container": [{"running_task?": int}]}],
}
EDI_PROFILE = {
    "name": str,
    "policy": {"kernel_min": int, "kernel_max": int},
    "kernel": {"envs": [{"name": str, "value": str}], "connection_timeout": int},
    "resource_allocation": {"kernel": {"resources": str}},
}
# storage volumes, as recorded (volumes-*.json): content_length, never size
VOLUME_ENTRY = {
    "$": {
        **S({"path": str, "type": {"file", "directory"}, "content_length": int, "last_modified": str}),
        "not": {"required": ["size"]},
    }
}
VOLUME_LISTING = {"responseObject": {"directoryContents": [VOLUME_ENTRY]}}
VOLUME_INSTANCES = {"service_instances": [{"display_name": str}], "total_count": int}
# WMLA execs, as recorded (wmla-exec-*.json)
EXEC = {"id": str, "state": "re:" + EXEC_STATE, "args": str, "createTime": str}
# WML and CAMS, as IBM's SDKs read them (reference/CPD-SDKs.md)
ASSET = {
    "metadata": {
        "asset_id": str,
        "asset_type": str,
        "name": str,
        "created_at": str,
        "space_id": str,
        "usage": {"last_updated_at": str},
    },
    "href": str,
}
SPEC = {"metadata": {"asset_id": str, "name": str}}
WML_OBJECT = {"metadata": {"id": str}}
DEPLOYMENT = {"metadata": {"id": str, "name": str, "created_at": str}, "entity": {"status": {"state": str}}}
SPACE = {"metadata": {"id": str}, "entity": {"name": str}}
# OpenScale: IBM's classes, plus what our code reads that they leave optional
OS_DEFINITION = {"metadata": {"id": str}, "entity": {"name": str, "metrics": [{"id": str, "name": str}]}}
OS_RUN = {"metadata": {"id": str, "created_at": str}, "entity": {"status": {"state": str}}}
OS_MEASUREMENT = {"metadata": {"id": str}, "entity": {"run_id": str, "timestamp": str, "values": list}}


@dataclass(frozen=True)
class Rule:
    method: str  # a regex
    path: str  # a regex on the whole path
    family: str
    schema: Any = None  # a compact spec (see S); None: an acknowledgement or not JSON
    ibm: str | None = None  # IBM's class for the result: "edi:Model", "wos:MonitoringRun"
    status: tuple[int, ...] = (200, 201, 202, 204)
    source: str = ""


def _each(spec: Any) -> list[Any]:
    return [spec]


RULES: list[Rule] = [
    # sign-in and version
    Rule("POST", r"/icp4d-api/v1/authorize", "authorize", {"token": str}, source="CPD platform API"),
    Rule("GET", r"/ml/wml_services(/v2)?/version", "version", {"version": str}, source="CPD-SDKs.md"),
    Rule("GET", r"/ml/v1/foundation_model_specs", "version", None, source="CPD-SDKs.md (status only)"),
    # WML v4 and CAMS
    Rule("GET", r"/v2/spaces", "wml", {"resources": [SPACE]}),
    Rule("GET", rf"/v2/spaces/{ID}", "wml", SPACE),
    Rule("POST", r"/v2/asset_types/data_asset/search", "cams", {"results": [ASSET]}, source="CPD-SDKs.md"),
    Rule("POST", r"/v2/assets", "cams", ASSET, status=(201,), source="CPD-SDKs.md"),
    Rule("GET", rf"/v2/assets/{ID}", "cams", ASSET, source="CPD-SDKs.md"),
    Rule("DELETE", rf"/v2/assets/{ID}", "cams", None, status=(204,), source="CPD-SDKs.md"),
    Rule(
        "POST",
        rf"/v2/assets/{ID}/attachments",
        "cams",
        {"attachment_id": str, "url1": str},
        status=(201,),
        source="CPD-SDKs.md",
    ),
    Rule("POST", rf"/v2/assets/{ID}/attachments/{ID}/complete", "cams", None, source="CPD-SDKs.md"),
    Rule("GET", rf"/v2/assets/{ID}/attachments/{ID}", "cams", {"url": str}, source="CPD-SDKs.md"),
    Rule("(GET|PUT)", rf"/v2/asset_files/{ID}", "cams", None, source="CPD-SDKs.md (bytes)"),
    Rule("GET", r"/v2/(software|hardware)_specifications", "wml", {"resources": [SPEC]}),
    Rule("POST", r"/ml/v4/functions", "wml", WML_OBJECT, status=(201,)),
    Rule("GET", rf"/ml/v4/functions/{ID}", "wml", WML_OBJECT),
    Rule("PUT", rf"/ml/v4/functions/{ID}/code", "wml", None),
    Rule("DELETE", rf"/ml/v4/(functions|deployments)/{ID}", "wml", None, status=(204,)),
    Rule("POST", r"/ml/v4/deployments", "wml", DEPLOYMENT, status=(201, 202)),
    Rule("GET", r"/ml/v4/deployments", "wml", {"resources": [DEPLOYMENT]}),
    Rule("GET", rf"/ml/v4/deployments/{ID}", "wml", DEPLOYMENT),
    Rule("POST", rf"/ml/v4/deployments/{ID}/predictions", "wml", {"predictions": list}),
    # storage volumes
    Rule(
        "GET",
        r"/zen-data/v3/service_instances",
        "volumes",
        VOLUME_INSTANCES,
        source="volumes-service-instances",
    ),
    Rule(
        "GET", rf"/zen-volumes/{ID}/v1/volumes/directories/.+", "volumes", VOLUME_LISTING, source="volumes-*"
    ),
    Rule("(GET|PUT|DELETE)", rf"/zen-volumes/{ID}/v1/volumes/files/.+", "volumes", None),
    # WMLA execs
    Rule(
        "POST",
        r"/platform/rest/deeplearning/v1/execs",
        "execs",
        {"id": str, "state?": "re:" + EXEC_STATE},
        source="wmla-exec-submit",
    ),
    Rule("GET", r"/platform/rest/deeplearning/v1/execs", "execs", [EXEC], source="wmla-exec-states"),
    Rule("GET", rf"/platform/rest/deeplearning/v1/execs/{ID}", "execs", EXEC, source="wmla-exec-states"),
    Rule("(GET|POST)", rf"/platform/rest/deeplearning/v1/execs/{ID}/(log|result|stop)", "execs", None),
    # EDI
    Rule("GET", r"/dlim/v1/model", "dlim", [EDI_MODEL], ibm="edi:Model[]", source="edi-model-view"),
    Rule("GET", rf"/dlim/v1/model/{ID}", "dlim", EDI_MODEL, ibm="edi:Model", source="edi-model-view"),
    Rule("GET", rf"/dlim/v1/model/{ID}/instance", "dlim", EDI_INSTANCE, source="edi-instance-*"),
    Rule("GET", rf"/dlim/v1/model/{ID}/appprofile", "dlim", EDI_PROFILE, source="edi-appprofile"),
    Rule("POST", r"/dlim/v1/deployment/model(/[^/]+)?", "dlim", None),
    Rule("PUT", rf"/dlim/v1/model/{ID}/(appprofile|operation/(start|stop))", "dlim", None),
    Rule("DELETE", rf"/dlim/v1/model/{ID}", "dlim", None),
    Rule("POST", rf"/dlim/v1/inference/{ID}", "dlim", None),  # the kernel's own answer
    # OpenScale
    Rule("GET", r"/v2/fairness/heartbeat", "openscale", None),
    Rule("GET", OS + r"/data_marts", "openscale", None, ibm="wos:DataMartDatabaseResponseCollection"),
    Rule("GET", OS + rf"/data_marts/{ID}", "openscale", None, ibm="wos:DataMartDatabaseResponse"),
    Rule("GET", OS + r"/service_providers", "openscale", None, ibm="wos:ServiceProviderResponseCollection"),
    Rule(
        "(GET|POST)",
        OS + rf"/service_providers(/{ID})?",
        "openscale",
        None,
        ibm="wos:ServiceProviderResponse",
    ),
    Rule(
        "DELETE",
        OS + rf"/(service_providers|subscriptions|integrated_systems|monitor_instances)/{ID}",
        "openscale",
    ),
    Rule("GET", OS + r"/subscriptions", "openscale", None, ibm="wos:SubscriptionResponseCollection"),
    Rule("(GET|POST)", OS + rf"/subscriptions(/{ID})?", "openscale", None, ibm="wos:SubscriptionResponse"),
    Rule(
        "GET",
        OS + r"/monitor_definitions",
        "openscale",
        {"monitor_definitions": [OS_DEFINITION]},
        ibm="wos:MonitorCollections",
    ),
    Rule(
        "(GET|POST)",
        OS + rf"/monitor_definitions(/{ID})?",
        "openscale",
        OS_DEFINITION,
        ibm="wos:MonitorDisplayForm",
        source="openscale-monitor-definition-runtime",
    ),
    Rule("GET", OS + r"/integrated_systems", "openscale", None, ibm="wos:IntegratedSystemCollection"),
    Rule(
        "(GET|POST|PATCH)",
        OS + rf"/integrated_systems(/{ID})?",
        "openscale",
        None,
        ibm="wos:IntegratedSystemResponse",
        source="openscale-integrated-system-association",
    ),
    Rule("GET", OS + r"/monitor_instances", "openscale", None, ibm="wos:MonitorInstanceCollection"),
    Rule(
        "(GET|POST|PATCH)",
        OS + rf"/monitor_instances(/{ID})?",
        "openscale",
        None,
        ibm="wos:MonitorInstanceResponse",
    ),
    Rule(
        "GET",
        OS + rf"/monitor_instances/{ID}/runs",
        "openscale",
        {"runs": [OS_RUN]},
        ibm="wos:MonitoringRunCollection",
    ),
    Rule(
        "(GET|POST|PATCH)",
        OS + rf"/monitor_instances/{ID}/runs(/{ID})?",
        "openscale",
        OS_RUN,
        ibm="wos:MonitoringRun",
        source="openscale-run-patch",
    ),
    Rule(
        "GET",
        OS + rf"/monitor_instances/{ID}/measurements",
        "openscale",
        {"measurements": [OS_MEASUREMENT]},
        ibm="wos:MonitorMeasurementResponseCollection",
    ),
    Rule(
        "GET",
        OS + rf"/monitor_instances/{ID}/measurements/{ID}",
        "openscale",
        OS_MEASUREMENT,
        ibm="wos:MonitorMeasurementResponse",
    ),
    Rule(
        "POST",
        OS + rf"/monitor_instances/{ID}/measurements",
        "openscale",
        None,
        status=(202,),
        source="openscale-measurements-post",
    ),
    Rule(
        "GET",
        OS + r"/measurements",
        "openscale",
        {"measurements": [OS_MEASUREMENT]},
        ibm="wos:MeasurementsResponseCollection",
    ),
]

# IBM's classes that reject recorded real answers: the recording wins (no class in the rule)
CONTRADICTED = {
    "edi-instance-not-available-after-start": ("edi:ModelInstance", "requires instances"),
    "edi-instance-disabled": ("edi:ModelInstance", "requires instances"),
    "edi-appprofile": ("edi:ModelAppProfile", "requires consumer and more"),
}


def ibm_parser(name: str) -> Callable[[Any], Any]:
    """IBM's `from_dict` for "edi:Class", "wos:Class" (a trailing [] parses each item)."""
    family, _, cls = name.partition(":")
    many = cls.endswith("[]")
    cls = cls.removesuffix("[]")
    if family == "edi":
        from ibm_wmla import wmla_api_edi_v2 as module
    else:
        from ibm_watson_openscale.base_classes import watson_open_scale_v2 as module
    parse = getattr(module, cls).from_dict
    return (lambda body: [parse(item) for item in body]) if many else parse


def rule_for(method: str, path: str) -> Rule | None:
    return next((r for r in RULES if re.fullmatch(r.method, method) and re.fullmatch(r.path, path)), None)


def problems_of(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with one answer, in words (empty: it keeps the contract)."""
    if status >= 300:
        return []
    rule = rule_for(method, path)
    if rule is None:
        return [f"{method} {path}: no contract rule (which of our calls reads it?)"]
    out = []
    if status not in rule.status:
        out.append(f"{method} {path}: status {status}, the contract says {rule.status}")
    if rule.schema is not None and body is not None:
        for err in jsonschema.Draft7Validator(S(rule.schema)).iter_errors(body):
            where = "/".join(str(p) for p in err.absolute_path) or "(body)"
            out.append(f"{method} {path}: {where}: {err.message}")
    if rule.ibm is not None and body is not None:
        try:
            ibm_parser(rule.ibm)(body)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            out.append(f"{method} {path}: {rule.ibm}: {exc}")
    return out


def check(responses: list[tuple[str, str, int, Any]]) -> list[str]:
    """Every captured answer against the contract: what fails, in words."""
    return [p for method, path, status, body in responses for p in problems_of(method, path, status, body)]
