"""The Deploy tab's tools for one deployment, as the CLI's `deploy infer` and `deploy logs`:
send a test request and see the answer (images in it previewed), read or follow the kernels'
log. Neither changes state, so neither goes through the runner."""

from __future__ import annotations

import base64
import html
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._files import PathField
from mlops_widgets.widgets._forms import Action, error_html, number_text, read_number, section
from mlops_widgets.widgets._style import LABEL, fit, grow, name_only, span
from mlops_widgets.widgets._table import Table
from mlops_widgets.widgets._task import deployment_key, error_text

IMAGE_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}
PREVIEW_LIMIT = 4


def _image_type(data: bytes) -> str | None:
    return next((mime for magic, mime in IMAGE_MAGIC.items() if data.startswith(magic)), None)


def _decoded_image(value: str) -> tuple[str, str] | None:
    """(mime, base64) when `value` is a base64 PNG or JPEG."""
    if len(value) < 64:
        return None
    try:
        data = base64.b64decode(value[: 64 * 4], validate=False)
    except ValueError:
        return None
    mime = _image_type(data)
    return (mime, value) if mime else None


def response_html(answer: bytes) -> str:
    """A deployment's answer for a person: an image shown, JSON indented with its base64
    images previewed (and shortened in the text), anything else as text."""
    mime = _image_type(answer)
    if mime:
        return f"<img class='mlops-preview' src='data:{mime};base64,{base64.b64encode(answer).decode()}'>"
    text = answer.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return f"<pre class='mlops-response'>{html.escape(text[:20_000])}</pre>"
    images: list[tuple[str, str, str]] = []

    def shorten(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: shorten(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [shorten(v, key) for v in value]
        if isinstance(value, str):
            found = _decoded_image(value)
            if found:
                images.append((key, *found))
                return f"<{found[0]}, {len(value)} base64 characters: shown below>"
            if len(value) > 300:
                return value[:300] + f"… ({len(value)} characters)"
        return value

    body = json.dumps(shorten(doc), indent=2)
    shown = "".join(
        f"<figure class='mlops-preview'><img src='data:{mime};base64,{html.escape(data)}'>"
        f"<figcaption>{html.escape(key)}</figcaption></figure>"
        for key, mime, data in images[:PREVIEW_LIMIT]
    )
    return f"<pre class='mlops-response'>{html.escape(body)}</pre>{shown}"


class DeploymentTools:
    """Test request and logs of the deployment picked in the Deploy tab's `target` table."""

    def __init__(self, ctx: PanelContext, target: Table, state: Callable[[], str | None]) -> None:
        self.ctx = ctx
        self.target = target
        self.state = state  # the picked deployment's state: only a started one answers
        self.image = PathField(
            "Test image",
            base=ctx.base,
            css="mlops-infer-image",
            placeholder='PNG or JPEG sent as {"image": base64}',
        )
        self.body = w.Textarea(
            description="or JSON body",
            placeholder='{"image": "<base64>", "name": "tile"}',
            style=LABEL,
            layout=grow(18, 48),
        )
        self.body.add_class("mlops-infer-body")
        self.send = Action("Send", icon="paper-plane", css="mlops-infer-send")
        self.send.on_click(self.send_request)
        self.response = w.HTML()
        self.response.add_class("mlops-infer-response")
        self.tail = number_text("Last lines", 50, css="mlops-logs-tail", style=LABEL, layout=grow(14, 20))
        self.tail_error = w.HTML()
        self.tail_error.add_class("mlops-field-error")
        self.show_logs = w.Button(description="Show logs", icon="file-text", layout=fit())
        self.show_logs.add_class("mlops-logs-show")
        self.show_logs.on_click(lambda _: self.read_logs())
        self.follow = w.ToggleButton(
            description="Follow", icon="play", layout=fit(), tooltip="keep adding what the kernels write"
        )
        self.follow.add_class("mlops-logs-follow")
        self.follow.observe(lambda change: self._follow(change["new"]), "value")
        self.log = w.Textarea(
            layout=w.Layout(width="auto", height="14em", align_self="stretch"), disabled=True
        )
        self.log.add_class("mlops-logs")
        name_only(self.log, "Deployment log")
        self.log_message = w.HTML()
        self._stop = threading.Event()
        self.widget = w.VBox(
            [
                section("Test request", "one request to the deployment picked above"),
                self.image.widget,
                self.body,
                self.send.widget,
                self.response,
                section("Logs", "what the deployment's kernels write"),
                w.HBox([self.tail, self.show_logs, self.follow, self.tail_error]),
                self.log_message,
                self.log,
            ]
        )
        for field in (self.image.text, self.body, self.tail):
            field.observe(lambda _: self.update_actions(), "value")
        target.observe(lambda _: self.update_actions(), "value")
        self.update_actions()

    def update_actions(self) -> None:
        pick = None if self.target.value else "pick a deployment"
        empty = (
            None if (self.image.value or self.body.value.strip()) else "choose a test image or write a body"
        )
        state = self.state()
        stopped = (
            f"{self.target.value} is {state}: press Start above first"
            if self.target.value and state not in (None, "started")
            else None
        )
        busy = self.ctx.busy_reason({deployment_key(self.target.value or "")})
        self.send.set_reason(busy or pick or stopped or empty)
        try:
            self._tail()
            self.tail_error.value = ""
            bad_tail = False
        except ValueError as exc:
            self.tail_error.value = error_html([str(exc)])
            bad_tail = True
        self.show_logs.disabled = self.follow.disabled = not self.target.value or bad_tail

    def _tail(self) -> int:
        """The number of last lines asked for (ValueError: not a whole number from 0)."""
        return int(read_number(self.tail.value, integer=True, low=0, high=100_000))

    def request_body(self) -> bytes:
        """The image as the example kernel's request, else the JSON body as written."""
        path = self.image.resolved()
        if path is not None:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read {self.image.value}: {exc.strerror}") from None
            return json.dumps({"image": base64.b64encode(data).decode(), "name": Path(path).stem}).encode()
        return self.body.value.strip().encode()

    def send_request(self) -> None:
        name, ctx = self.target.value, self.ctx
        if not name:  # Send is disabled until a deployment is picked
            return
        self.response.value = ""
        try:
            body = self.request_body()
        except ValueError as exc:
            self.response.value = error_html([str(exc)])
            return

        def done(answer: bytes) -> None:
            self.response.value = response_html(answer)

        ctx.run_call(
            f"Test request to {name}",
            lambda _: ctx.app.infer(name, body),
            on_done=done,
            keys={deployment_key(name)},
        )

    def read_logs(self) -> None:
        """The last lines of the log, as `deploy logs --tail N`."""
        name = self.target.value
        self.log_message.value = ""
        if not name:  # Show logs is disabled until a deployment is picked
            return
        try:
            lines = list(self.ctx.app.deployment_logs(name, tail=self._tail()))
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.log_message.value = error_html([error_text(exc)])
            return
        self.log.value = "\n".join(line.rstrip("\n") for line in lines)
        if not lines:
            self.log_message.value = span("mlops-muted", "no kernel log yet")

    def _follow(self, on: bool) -> None:
        """Keep adding lines in a thread until Follow is released (or the log ends)."""
        self._stop.set()
        name, ctx = self.target.value, self.ctx
        if not on or not name:
            return
        self.read_logs()
        stop = self._stop = threading.Event()

        def pump() -> None:
            try:
                for line in ctx.app.deployment_logs(name, tail=0, follow=True):
                    if stop.is_set():
                        return
                    self.log.value = (self.log.value + "\n" + line.rstrip("\n")).lstrip("\n")[-200_000:]
            except Exception as exc:  # noqa: BLE001 - shown inline
                self.log_message.value = error_html([error_text(exc)])
            self.follow.value = False

        threading.Thread(target=pump, name=f"mlops-panel: logs {name}", daemon=True).start()
