"""A fake Cloud Pak for Data on 127.0.0.1 that the real IBM SDKs talk to (HTTPS, stateful).

    fake = FakeCpd(certs, version="4.8.5").start()
    env = fake.env()          # BASE_URL, USERNAME, APIKEY, SPACE_ID, WMLA_HOST, ... CA bundle
    ...
    fake.stop()

Controls for error paths: `fake.router.fail(method, path_regex, status, times)`,
`fake.router.revoke_tokens()` (every token issued so far expires), `fake.router.log`;
`fake.router.capture` / `fake.router.mutate(...)` (contract tests: response bodies, drifted
shapes); `fake.dlim.start_delay` / `stop_delay` (EDI's asynchronous states), `fake.dlim.executor`
(echo, or `fakecpd.kernels.KernelExecutor` to run uploaded kernels); `fake.wml.search_lag`
(CAMS's index trailing writes), `fake.wml.before_create` (interleave a slow upload),
`fake.wml.forward_token`; `fake.openscale.payload_form`, `fake.openscale.page`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fakecpd.certs import Certs, make_certs
from fakecpd.server import HttpError, Listener, Request, Router, new_id
from fakecpd.wml import SOFTWARE_SPEC

__all__ = ["Certs", "FakeCpd", "make_certs"]

USER = "mlops-user"
APIKEY = "fake-api-key-0123456789"


class FakeCpd:
    """WML spaces and assets, OpenScale, WMLA dlim and storage volumes behind one console
    listener, and WMLA inference behind a second one."""

    def __init__(self, certs: Certs, *, version: str = "4.8.5", workdir: Path | None = None) -> None:
        from fakecpd.dlim import Dlim
        from fakecpd.execs import Execs
        from fakecpd.openscale import OpenScale
        from fakecpd.volumes import Volumes
        from fakecpd.wml import Wml

        self.certs = certs
        self.router = Router()
        self.router.users[USER] = APIKEY
        self.console = Listener(self.router, certs, inference_host=False)
        self.inference = Listener(self.router, certs, inference_host=True)
        self.space_id = new_id()
        self.workdir = workdir
        self.router.add("POST", r"/icp4d-api/v1/authorize", self.authorize, public=True)
        self.wml = Wml(self.router, version=version, space_id=self.space_id, base_url=self.base_url)
        self.dlim = Dlim(self.router, inference_url=self.inference_url)
        self.execs = Execs(self.router, workdir)  # WMLA deep-learning execs (training)
        self.volumes = Volumes(self.router)
        self.openscale = OpenScale(self.router, wml=self.wml)
        self.wml.scorers["function"] = self.run_function

    @property
    def base_url(self) -> str:
        return self.console.url

    @property
    def inference_url(self) -> str:
        return self.inference.url

    def start(self) -> FakeCpd:
        self.console.start()
        self.inference.start()
        return self

    def stop(self) -> None:
        """Stop both listeners once running evaluations (and their provider processes) end."""
        for t in self.openscale.threads:
            t.join(timeout=150)
        stop_all = getattr(self.dlim.executor, "stop_all", None)
        if stop_all is not None:
            stop_all()
        self.execs.stop_all()
        self.console.stop()
        self.inference.stop()

    def __enter__(self) -> FakeCpd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, *, token: bool = False) -> dict[str, str]:
        """The environment a user of this cluster would set (username + API key by default)."""
        env = {
            "BASE_URL": self.base_url,
            "SPACE_ID": self.space_id,
            "WMLA_HOST": self.base_url,
            "WMLA_INFERENCE_HOST": self.inference_url,
            "MLOPS_CPD_CA_BUNDLE": str(self.certs.ca),
            "MLOPS_CPD_SOFTWARE_SPEC": SOFTWARE_SPEC,
        }
        if token:
            env["USER_ACCESS_TOKEN"] = self.router.issue_token(USER)
        else:
            env["USERNAME"] = USER
            env["APIKEY"] = APIKEY
        return env

    def authorize(self, req: Request) -> dict[str, Any]:
        body = req.json() or {}
        user = body.get("username")
        secret = body.get("api_key") or body.get("password")
        if not user or self.router.users.get(user) != secret:
            raise HttpError(401, "invalid username or api_key", "invalid_credentials")
        return {"_messageCode_": "200", "message": "Success", "token": self.router.issue_token(user)}

    def run_function(
        self, code: bytes, payload: dict[str, Any], token: str | None, timeout: float
    ) -> dict[str, Any]:
        """Run a deployed function's score() in its own process, as WML would on the cluster."""
        from fakecpd.functions import run_function

        return run_function(code, payload, token, sys.executable, timeout, self.wml.runtime_env)
