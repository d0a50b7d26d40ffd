"""Fake Watson OpenScale v2, Cloud Pak for Data flavour (service instance 00000000-...).

Stateful and strict where the SDK and the workflow depend on it: every object has
`metadata.{id,url,created_at}`; collections are `{"<plural>": [...]}`; definitions get
server-assigned metric ids (lower-case names) and their id from their name; a new subscription
gets OpenScale's model_health and performance instances; thresholds must name metric ids of the
definition; a measurement gets each metric's limit and the issue count computed here.

A run does what OpenScale does for a custom monitor: if the instance has
`enable_custom_metric_runs: True`, it signs in with the integrated system's credentials and
calls its endpoint as registered (a WML function deployment of this fake, which insists on
`?version=`) with the custom-metrics payload, in the background, waiting at most the instance's
`custom_metrics_wait_time`; the provider publishes a measurement and marks the run finished or
failed. A run still running when the provider answers is marked failed with the provider's
error. The payload carries the run id as `custom_monitor_run_id` (current) or, with
`payload_form = "run_details"`, in `custom_monitor_instance_params.run_details` (older).
"""

from __future__ import annotations

import copy
import re
import threading
import time
from typing import Any

from fakecpd.server import HttpError, Request, Response, Router, new_id, now_iso

INSTANCE = "00000000-0000-0000-0000-000000000000"
BUILTIN = ("fairness", "quality", "drift", "drift_v2", "explainability", "model_health", "performance")
P = rf"/openscale/{INSTANCE}/v2"


def metric_id(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class OpenScale:
    def __init__(self, router: Router, *, wml: Any) -> None:
        self.router = router
        self.wml = wml
        self.store: dict[str, dict[str, dict[str, Any]]] = {
            k: {}
            for k in (
                "service_providers",
                "subscriptions",
                "monitor_definitions",
                "integrated_systems",
                "monitor_instances",
                "runs",
                "measurements",
            )
        }
        self.threads: list[threading.Thread] = []
        self.provider_calls: list[str] = []  # every endpoint OpenScale called
        self.payload_form = "custom_monitor_run_id"  # or "run_details", as older releases sent
        self.page = 100  # measurements per page of a listing
        self.measurement_lag = 0.2  # seconds from a measurement's 202 to its being readable
        self.visible_at: dict[str, float] = {}  # measurement id -> when it becomes readable
        self.credentials: dict[str, Any] = {}  # integrated system id -> credentials
        for name in BUILTIN:
            self._put(
                "monitor_definitions",
                name,
                {
                    "name": name,
                    "description": f"OpenScale {name}",
                    "metrics": [],
                    "tags": [],
                    "applies_to": {},
                },
            )
        r = router
        r.add("GET", r"/v2/fairness/heartbeat", lambda req: {"is_cloud": False}, public=True)
        r.add("GET", P + r"/data_marts", self.list_data_marts)
        r.add("GET", P + r"/data_marts/(?P<oid>[^/]+)", self.get_data_mart)
        for kind in ("service_providers", "subscriptions", "monitor_definitions", "integrated_systems"):
            r.add("GET", P + rf"/{kind}", self._lister(kind))
            r.add("GET", P + rf"/{kind}/(?P<oid>[^/]+)", self._getter(kind))
        r.add("POST", P + r"/service_providers", self.add_service_provider)
        r.add("DELETE", P + r"/service_providers/(?P<oid>[^/]+)", self.delete_service_provider)
        r.add("POST", P + r"/subscriptions", self.add_subscription)
        r.add("DELETE", P + r"/subscriptions/(?P<oid>[^/]+)", self.delete_subscription)
        r.add("POST", P + r"/monitor_definitions", self.add_definition)
        r.add("POST", P + r"/integrated_systems", self.add_integrated_system)
        r.add("DELETE", P + r"/integrated_systems/(?P<oid>[^/]+)", self._deleter("integrated_systems"))
        r.add("PATCH", P + r"/integrated_systems/(?P<oid>[^/]+)", self.patch_integrated_system)
        r.add("GET", P + r"/monitor_instances", self.list_instances)
        r.add("POST", P + r"/monitor_instances", self.add_instance)
        r.add("GET", P + r"/monitor_instances/(?P<oid>[^/]+)", self._getter("monitor_instances"))
        r.add("PATCH", P + r"/monitor_instances/(?P<oid>[^/]+)", self.patch_instance)
        r.add("DELETE", P + r"/monitor_instances/(?P<oid>[^/]+)", self.delete_instance)
        r.add("POST", P + r"/monitor_instances/(?P<iid>[^/]+)/runs", self.add_run)
        r.add("GET", P + r"/monitor_instances/(?P<iid>[^/]+)/runs", self.list_runs)
        r.add("GET", P + r"/monitor_instances/(?P<iid>[^/]+)/runs/(?P<rid>[^/]+)", self.get_run)
        r.add("PATCH", P + r"/monitor_instances/(?P<iid>[^/]+)/runs/(?P<rid>[^/]+)", self.patch_run)
        r.add("POST", P + r"/monitor_instances/(?P<iid>[^/]+)/measurements", self.add_measurements)
        r.add("GET", P + r"/monitor_instances/(?P<iid>[^/]+)/measurements", self.list_measurements)
        r.add(
            "GET", P + r"/monitor_instances/(?P<iid>[^/]+)/measurements/(?P<mid>[^/]+)", self.get_measurement
        )
        r.add("GET", P + r"/measurements", self.query_measurements)

    # -- generic storage -----------------------------------------------------------------------

    def _put(self, kind: str, oid: str, entity: dict[str, Any], url: str | None = None) -> dict[str, Any]:
        obj = {
            "metadata": {
                "id": oid,
                "url": url or f"/v2/{kind}/{oid}",
                "created_at": now_iso(),
                "crn": f"crn:v1:fake:{kind}:{oid}",
            },
            "entity": entity,
        }
        with self.router.lock:
            self.store[kind][oid] = obj
        return obj

    def _get(self, kind: str, oid: str) -> dict[str, Any]:
        obj = self.store[kind].get(oid)
        if obj is None:
            raise HttpError(404, f"{kind[:-1].replace('_', ' ')} {oid} not found", "not_found")
        return obj

    def _lister(self, kind: str) -> Any:
        def handler(req: Request) -> dict[str, Any]:
            items = list(self.store[kind].values())
            filters = {
                "service_provider_id": ("entity", "service_provider_id"),
                "type": ("entity", "type"),
            }
            for param, path in filters.items():
                value = req.query.get(param)
                if value:
                    items = [i for i in items if i[path[0]].get(path[1]) == value]
            return {kind: items}

        return handler

    def _getter(self, kind: str) -> Any:
        return lambda req, oid: self._get(kind, oid)

    def _deleter(self, kind: str) -> Any:
        def handler(req: Request, oid: str) -> Response:
            self._get(kind, oid)
            with self.router.lock:
                del self.store[kind][oid]
            return Response(202)

        return handler

    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        body = req.json()
        if not isinstance(body, dict):
            raise HttpError(400, "body must be a JSON object")
        return body

    # -- data marts ----------------------------------------------------------------------------

    def _data_mart(self) -> dict[str, Any]:
        return {
            "metadata": {
                "id": INSTANCE,
                "url": f"/v2/data_marts/{INSTANCE}",
                "created_at": "2020-01-01T00:00:00.000Z",
            },
            "entity": {"name": "fake", "internal_database": True, "status": {"state": "active"}},
        }

    def list_data_marts(self, req: Request) -> dict[str, Any]:
        return {"data_marts": [self._data_mart()]}

    def get_data_mart(self, req: Request, oid: str) -> dict[str, Any]:
        if oid != INSTANCE:
            raise HttpError(404, f"data mart {oid} not found")
        return self._data_mart()

    # -- service providers, subscriptions -------------------------------------------------------

    def add_service_provider(self, req: Request) -> Response:
        body = self._body(req)
        if not body.get("name") or not body.get("service_type"):
            raise HttpError(400, "name and service_type are required")
        # OpenScale keeps credentials in its vault and answers with a reference only
        entity = {**body, "status": {"state": "active"}}
        if "credentials" in body:
            entity["credentials"] = {"secret_id": new_id()}
        return Response(201, self._put("service_providers", new_id(), entity))

    def delete_service_provider(self, req: Request, oid: str) -> Response:
        self._get("service_providers", oid)
        if any(s["entity"]["service_provider_id"] == oid for s in self.store["subscriptions"].values()):
            raise HttpError(400, f"service provider {oid} has subscriptions")
        del self.store["service_providers"][oid]
        return Response(202)

    def add_subscription(self, req: Request) -> Response:
        body = self._body(req)
        for key in ("data_mart_id", "service_provider_id", "asset", "deployment"):
            if not body.get(key):
                raise HttpError(400, f"{key} is required")
        if body["data_mart_id"] != INSTANCE:
            raise HttpError(404, f"data mart {body['data_mart_id']} not found")
        self._get("service_providers", body["service_provider_id"])
        if not body["asset"].get("name") or not body["asset"].get("asset_type"):
            raise HttpError(400, "asset.name and asset.asset_type are required")
        entity = {**body, "status": {"state": "active"}}
        # (the SDK then creates the model_health and performance instances itself)
        return Response(202, self._put("subscriptions", new_id(), entity))

    def delete_subscription(self, req: Request, oid: str) -> Response:
        self._get("subscriptions", oid)
        with self.router.lock:
            del self.store["subscriptions"][oid]
            doomed = [
                i
                for i, o in self.store["monitor_instances"].items()
                if o["entity"]["target"]["target_id"] == oid
            ]
            for iid in doomed:
                self._drop_instance(iid)
        return Response(202)

    def _drop_instance(self, iid: str) -> None:
        self.store["monitor_instances"].pop(iid, None)
        for kind in ("runs", "measurements"):
            for oid in [k for k, o in self.store[kind].items() if o["entity"]["monitor_instance_id"] == iid]:
                del self.store[kind][oid]

    # -- monitor definitions, integrated systems ----------------------------------------------

    def add_definition(self, req: Request) -> Response:
        body = self._body(req)
        name = body.get("name")
        metrics = body.get("metrics")
        if not name or not isinstance(metrics, list) or not metrics or "tags" not in body:
            raise HttpError(400, "name, metrics (non-empty) and tags are required")
        oid = metric_id(name)
        if oid in self.store["monitor_definitions"]:
            raise HttpError(400, f"monitor definition {oid} already exists", "already_exists")
        out_metrics = []
        for m in metrics:
            if not m.get("name") or not isinstance(m.get("thresholds", []), list):
                raise HttpError(400, "each metric needs a name")
            for t in m.get("thresholds") or []:
                if t.get("type") not in ("lower_limit", "upper_limit"):
                    raise HttpError(400, f"bad threshold type {t.get('type')!r}")
            out_metrics.append({**m, "id": metric_id(m["name"])})
        tags = [{**t, "id": metric_id(t["name"])} for t in body["tags"]]
        entity = {**body, "metrics": out_metrics, "tags": tags}
        return Response(202, self._put("monitor_definitions", oid, entity))

    def add_integrated_system(self, req: Request) -> Response:
        body = self._body(req)
        if not body.get("name") or not body.get("type") or "credentials" not in body:
            raise HttpError(400, "name, type and credentials are required")
        entity = {**body, "credentials": {}}  # kept apart, never echoed back
        obj = self._put("integrated_systems", new_id(), entity)
        self.credentials[obj["metadata"]["id"]] = body["credentials"]
        return Response(201, obj)

    def patch_integrated_system(self, req: Request, oid: str) -> dict[str, Any]:
        """A JSON patch, as IBM's helper sends to associate the system with its monitor
        definitions (`add /parameters {monitor_definition_ids}`)."""
        system = self._get("integrated_systems", oid)
        ops = req.json()
        if not isinstance(ops, list):
            raise HttpError(400, "a JSON patch (list of operations) is required")
        with self.router.lock:
            for op in ops:
                path = str(op.get("path", ""))
                if op.get("op") not in ("add", "replace") or path not in (
                    "/parameters",
                    "/connection",
                    "/name",
                ):
                    raise HttpError(400, f"unsupported patch operation {op}")
                system["entity"][path.strip("/")] = op.get("value")
        return system

    # -- monitor instances ---------------------------------------------------------------------

    def list_instances(self, req: Request) -> dict[str, Any]:
        items = list(self.store["monitor_instances"].values())
        did = req.query.get("monitor_definition_id")
        tid = req.query.get("target.target_id")
        if did:
            items = [i for i in items if i["entity"]["monitor_definition_id"] in did.split(",")]
        if tid:
            items = [i for i in items if i["entity"]["target"]["target_id"] in tid.split(",")]
        return {"monitor_instances": items}

    def _check_thresholds(self, definition: dict[str, Any], thresholds: Any) -> None:
        ids = {m["id"] for m in definition["entity"]["metrics"]}
        if not isinstance(thresholds, list):
            raise HttpError(400, "thresholds must be a list")
        for t in thresholds:
            if t.get("metric_id") not in ids:
                raise HttpError(
                    400,
                    f"metric {t.get('metric_id')!r} is not a metric of {definition['metadata']['id']}",
                    "invalid_metric",
                )
            if t.get("type") not in ("lower_limit", "upper_limit") or not isinstance(
                t.get("value"), int | float
            ):
                raise HttpError(400, f"bad threshold {t}")

    def add_instance(self, req: Request) -> Response:
        body = self._body(req)
        did = body.get("monitor_definition_id")
        definition = self._get("monitor_definitions", str(did))
        target = body.get("target") or {}
        if target.get("target_type") != "subscription":
            raise HttpError(400, "target.target_type must be subscription")
        self._get("subscriptions", str(target.get("target_id")))
        self._check_thresholds(definition, body.get("thresholds") or [])
        if any(
            o["entity"]["monitor_definition_id"] == did
            and o["entity"]["target"]["target_id"] == target["target_id"]
            for o in self.store["monitor_instances"].values()
        ):
            raise HttpError(400, f"a {did} instance exists for {target['target_id']}", "already_exists")
        entity = {
            "data_mart_id": body.get("data_mart_id", INSTANCE),
            "monitor_definition_id": did,
            "target": target,
            "parameters": body.get("parameters") or {},
            "thresholds": body.get("thresholds") or [],
            "status": {"state": "active"},
        }
        return Response(202, self._put("monitor_instances", new_id(), entity))

    def patch_instance(self, req: Request, oid: str) -> dict[str, Any]:
        inst = self._get("monitor_instances", oid)
        ops = req.json()
        if not isinstance(ops, list):
            raise HttpError(400, "a JSON patch (list of operations) is required")
        entity = copy.deepcopy(inst["entity"])
        for op in ops:
            path = op.get("path")
            if path == "/schedule":  # stored and returned; the platform would run it
                definition = self._get("monitor_definitions", entity["monitor_definition_id"])
                runtime = (definition["entity"].get("monitor_runtime") or {}).get("type")
                if op.get("op") != "remove" and runtime != "custom_metrics_provider":
                    # (inferred from IBM's 4.5.1 migration, which removes such schedules)
                    raise HttpError(
                        400, "a custom monitor instance's schedule needs monitor_runtime on its definition"
                    )
                if op.get("op") == "remove":
                    entity.pop("schedule", None)
                elif op.get("op") in ("replace", "add"):
                    entity["schedule"] = self._check_schedule(op.get("value"))
                else:
                    raise HttpError(400, f"unsupported patch operation {op}")
                continue
            if op.get("op") not in ("replace", "add") or path not in ("/thresholds", "/parameters"):
                raise HttpError(400, f"unsupported patch operation {op}")
            if path == "/thresholds":
                self._check_thresholds(
                    self._get("monitor_definitions", entity["monitor_definition_id"]), op.get("value")
                )
            entity[path[1:]] = op.get("value")
            if path == "/parameters":
                self._sync_run(oid, op.get("value") or {})
        inst["entity"] = entity
        inst["metadata"]["modified_at"] = now_iso()
        return inst

    @staticmethod
    def _check_schedule(value: Any) -> dict[str, Any]:
        """OpenScale's MonitorInstanceSchedule: a positive repeat in minutes at the least."""
        units = ("minute", "hour", "day", "week", "month", "year")
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("repeat_interval"), int)
            or value["repeat_interval"] < 1
            or value.get("repeat_unit") not in units
            or value.get("status", "enabled") not in ("enabled", "disabled")
            or (value.get("start_time") or {}).get("type", "absolute") not in ("absolute", "relative")
        ):
            raise HttpError(400, f"invalid schedule {value!r}", "invalid_schedule")
        return value

    def delete_instance(self, req: Request, oid: str) -> Response:
        self._get("monitor_instances", oid)
        with self.router.lock:
            self._drop_instance(oid)
        return Response(202)

    # -- runs ----------------------------------------------------------------------------------

    def _run(self, iid: str, rid: str) -> dict[str, Any]:
        run = self._get("runs", rid)
        if run["entity"]["monitor_instance_id"] != iid:
            raise HttpError(404, f"run {rid} not found for instance {iid}")
        return run

    def add_run(self, req: Request, iid: str) -> Response:
        inst = self._get("monitor_instances", iid)
        body = req.json() or {}
        started = now_iso()
        run = self._put(
            "runs",
            new_id(),
            {
                "monitor_instance_id": iid,
                "triggered_by": body.get("triggered_by", "user"),
                "parameters": inst["entity"]["parameters"],
                "status": {"state": "running", "queued_at": started, "started_at": started},
            },
            url=f"/v2/monitor_instances/{iid}/runs/",
        )
        run["metadata"]["url"] += run["metadata"]["id"]
        t = threading.Thread(target=self._evaluate, args=(inst, run), daemon=True)
        self.threads.append(t)
        t.start()
        return Response(201, run)

    def _finish(self, run: dict[str, Any], state: str, error: str | None = None) -> None:
        with self.router.lock:
            status = run["entity"]["status"]
            if status["state"] != "running":
                return
            status.update(state=state, completed_at=now_iso())
            if error:
                status["failure"] = {
                    "trace": new_id(),
                    "errors": [{"code": "custom_metrics_failed", "message": error}],
                }

    def _evaluate(self, inst: dict[str, Any], run: dict[str, Any]) -> None:
        """Call the custom metrics provider the way OpenScale does."""
        params = inst["entity"]["parameters"]
        if params.get("enable_custom_metric_runs") is not True:
            self._finish(
                run,
                "error",
                "custom metric runs are not enabled on this monitor instance "
                "(enable_custom_metric_runs): the provider was not called",
            )
            return
        system_id = params.get("custom_metrics_provider_id")
        system = self.store["integrated_systems"].get(str(system_id))
        if system is None:
            self._finish(
                run,
                "error",
                f"integrated system {system_id!r} not found: the monitor "
                "instance has no custom_metrics_provider_id",
            )
            return
        creds = self.credentials.get(str(system_id)) or {}
        info = creds.get("token_info") or {}
        payload = info.get("payload") or {}
        user = payload.get("username")
        if self.router.users.get(user) != payload.get("api_key"):
            self._finish(run, "error", "the integrated system's credentials were refused")
            return
        token = self.router.issue_token(user)
        endpoint = (system["entity"].get("connection") or {}).get("endpoint", "")
        run_id = run["metadata"]["id"]
        values: dict[str, Any] = {
            "data_mart_id": INSTANCE,
            "subscription_id": inst["entity"]["target"]["target_id"],
            "custom_monitor_id": inst["entity"]["monitor_definition_id"],
            "custom_monitor_instance_id": inst["metadata"]["id"],
            "custom_monitor_instance_params": dict(params),
        }
        if self.payload_form == "run_details":  # older releases
            values["custom_monitor_instance_params"]["run_details"] = {
                "run_id": run_id,
                "run_status": "running",
            }
        else:
            values["custom_monitor_run_id"] = run_id
        wait = float(params.get("custom_metrics_wait_time") or 60)
        self.provider_calls.append(endpoint)
        try:
            answer = self.wml.score_function(
                endpoint, {"input_data": [{"values": values}]}, token, timeout=wait
            )
        except HttpError as exc:
            self._finish(run, "error", f"the provider endpoint answered {exc.status}: {exc.message}")
            return
        except Exception as exc:  # the provider crashed or overran: OpenScale records the failure
            self._finish(run, "error", f"the provider failed: {exc}")
            return
        errors = answer.get("errors") or answer.get("error_msg")
        self._finish(
            run,
            "error",
            f"the provider reported: {errors}" if errors else "the provider did not finish the run",
        )

    def _sync_run(self, iid: str, params: dict[str, Any]) -> None:
        """A provider reports a run's end through the instance's run_details (the original's way)."""
        details = params.get("run_details") or {}
        run = self.store["runs"].get(str(details.get("run_id")))
        if run is not None and run["entity"]["monitor_instance_id"] == iid:
            state = details.get("run_status")
            if state in ("finished", "error"):
                self._finish(run, state, details.get("run_error_msg"))

    def list_runs(self, req: Request, iid: str) -> dict[str, Any]:
        self._get("monitor_instances", iid)
        runs = [r for r in self.store["runs"].values() if r["entity"]["monitor_instance_id"] == iid]
        runs.sort(key=lambda r: r["metadata"]["created_at"], reverse=True)
        limit = int(req.query.get("limit") or 0)
        return {"runs": runs[:limit] if limit else runs}

    def get_run(self, req: Request, iid: str, rid: str) -> dict[str, Any]:
        return self._run(iid, rid)

    def patch_run(self, req: Request, iid: str, rid: str) -> dict[str, Any]:
        run = self._run(iid, rid)
        ops = req.json()
        if not isinstance(ops, list):
            raise HttpError(400, "a JSON patch (list of operations) is required")
        with self.router.lock:
            for op in ops:
                path = str(op.get("path", ""))
                if op.get("op") != "replace" or not path.startswith("/status/"):
                    raise HttpError(400, f"unsupported patch operation {op}")
                key = path.split("/")[2]
                if key == "state" and op.get("value") not in ("running", "finished", "error"):
                    raise HttpError(400, f"bad run state {op.get('value')!r}")
                run["entity"]["status"][key] = op.get("value")
        return run

    # -- measurements --------------------------------------------------------------------------

    def add_measurements(self, req: Request, iid: str) -> Response:
        inst = self._get("monitor_instances", iid)
        body = req.json()
        if not isinstance(body, list) or not body:
            raise HttpError(400, "a list of measurements is required")
        definition = self._get("monitor_definitions", inst["entity"]["monitor_definition_id"])
        limits = {}
        for m in definition["entity"]["metrics"]:
            t = (m.get("thresholds") or [{}])[0]
            if t:
                limits[m["id"]] = (t["type"], t["default"])
        for t in inst["entity"]["thresholds"]:
            limits[t["metric_id"]] = (t["type"], t["value"])
        out = []
        for item in body:
            if not item.get("timestamp") or not isinstance(item.get("metrics"), list):
                raise HttpError(400, "each measurement needs timestamp and metrics")
            values = []
            issues = 0
            for group in item["metrics"]:
                metrics = []
                for mid, value in group.items():
                    if mid not in {m["id"] for m in definition["entity"]["metrics"]}:
                        raise HttpError(400, f"{mid!r} is not a metric of {definition['metadata']['id']}")
                    entry = {"id": mid, "value": value}
                    if mid in limits:
                        kind, limit = limits[mid]
                        entry[kind] = limit
                        issues += value < limit if kind == "lower_limit" else value > limit
                    metrics.append(entry)
                values.append({"metrics": metrics, "tags": []})
            mid_ = new_id()
            obj = self._put(
                "measurements",
                mid_,
                {
                    "monitor_instance_id": iid,
                    "monitor_definition_id": definition["metadata"]["id"],
                    "run_id": item.get("run_id"),
                    "timestamp": item["timestamp"],
                    "target": inst["entity"]["target"],
                    "issue_count": issues,
                    "values": values,
                    "sources": item.get("sources") or [],
                },
                url=f"/v2/monitor_instances/{iid}/measurements/{mid_}",
            )
            self.visible_at[mid_] = time.monotonic() + self.measurement_lag
            out.append({"measurement_id": obj["metadata"]["id"], "metadata": obj["metadata"]})
        return Response(202, out)

    def _visible(self, m: dict[str, Any]) -> bool:
        """As recorded, a measurement POST is answered 202 and stored asynchronously: it is
        readable only `measurement_lag` seconds later."""
        return time.monotonic() >= self.visible_at.get(m["metadata"]["id"], 0.0)

    def list_measurements(self, req: Request, iid: str) -> dict[str, Any]:
        self._get("monitor_instances", iid)
        if not (req.query.get("start") and req.query.get("end")) and not req.query.get("run_id"):
            raise HttpError(400, "start and end, or run_id, are required")
        items = [
            m
            for m in self.store["measurements"].values()
            if m["entity"]["monitor_instance_id"] == iid
            and req.query.get("run_id") in (None, m["entity"]["run_id"])
            and self._visible(m)
        ]
        items.sort(key=lambda m: m["entity"]["timestamp"], reverse=True)
        total = len(items)
        limit = min(int(req.query.get("limit") or self.page), self.page)  # one page, newest first
        return {"measurements": items[:limit], "total_count": total}

    def get_measurement(self, req: Request, iid: str, mid: str) -> dict[str, Any]:
        m = self._get("measurements", mid)
        if m["entity"]["monitor_instance_id"] != iid or not self._visible(m):
            raise HttpError(404, f"measurement {mid} not found")
        return m

    def query_measurements(self, req: Request) -> dict[str, Any]:
        tid = req.query.get("target_id")
        did = req.query.get("monitor_definition_id")
        if not tid or req.query.get("target_type") != "subscription":
            raise HttpError(400, "target_id and target_type=subscription are required")
        items = [
            m
            for m in self.store["measurements"].values()
            if m["entity"]["target"]["target_id"] == tid
            and did in (None, m["entity"]["monitor_definition_id"])
            and self._visible(m)
        ]
        items.sort(key=lambda m: m["entity"]["timestamp"], reverse=True)
        n = int(req.query.get("recent_count") or 1)
        return {"measurements": items[:n]}
