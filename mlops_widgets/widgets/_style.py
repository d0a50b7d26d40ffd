"""The panel's look, in one place: colours from JupyterLab's theme variables (light and dark,
charts included) and widths that follow the panel's width instead of fixed pixels.

Widgets take their sizes from `grow()` (a field that fills its row within bounds), `fit()` (a
button as wide as its label) and `LABEL` (the description column, in em so it follows the font);
rows wrap when narrow. Messages take classes (`mlops-error`, `mlops-ok`, `mlops-warn`,
`mlops-muted`) the stylesheet colours from the theme; the stylesheet travels inside the panel
(an HTML widget), so it applies wherever the panel is shown.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import ipywidgets as w

LABEL = {"description_width": "10em"}
SHORT_LABEL = {"description_width": "6em"}

# The theme's variables, with the light theme's values as fallbacks outside JupyterLab.
CSS = """<style>
.mlops-panel { max-width: 100%; min-width: 0; color: var(--jp-ui-font-color1, #212121);
  --mlops-error: #c62828; --mlops-ok: #2e7d32; --mlops-warn: #9a4a00; --mlops-muted: #595959; }
body[data-jp-theme-light="false"] .mlops-panel {
  --mlops-error: #ff8a80; --mlops-ok: #81c784; --mlops-warn: #ffb74d; --mlops-muted: #b0b0b0; }
.mlops-panel .widget-hbox { flex-wrap: wrap; align-items: baseline; row-gap: 2px; max-width: 100%; }
.mlops-panel .widget-vbox, .mlops-panel .widget-box { min-width: 0; max-width: 100%; }
.mlops-panel .widget-vbox > * { flex-grow: 0 !important; flex-basis: auto !important; }
.mlops-panel .widget-vbox > .jupyter-button { align-self: flex-start; }
.mlops-panel .mlops-sr-label > .widget-label { position: absolute !important; width: 1px !important;
  height: 1px !important; overflow: hidden; clip-path: inset(50%); white-space: nowrap; margin: 0; padding: 0; }
.mlops-panel :focus-visible, .mlops-panel input:focus, .mlops-panel select:focus,
.mlops-panel textarea:focus, .mlops-panel button:focus-visible {
  outline: 2px solid var(--jp-ui-font-color0, #000) !important; outline-offset: 1px; }
.mlops-panel .widget-html, .mlops-panel .widget-html-content { min-width: 0; max-width: 100%; }
.mlops-panel .widget-html-content { overflow-wrap: anywhere; white-space: normal; }
.mlops-panel .widget-inline-hbox { min-width: 0; }
.mlops-panel .widget-inline-hbox .widget-label { flex-shrink: 0; }
.mlops-panel .widget-text input, .mlops-panel .widget-dropdown select { min-width: 0; }
.mlops-panel .widget-select select { overflow-x: hidden; }
.mlops-panel .jupyter-button { width: auto; min-width: 2.5em; padding: 0 0.8em; flex: 0 0 auto; }
.mlops-panel .widget-tab > .widget-tab-contents { overflow-x: hidden; }
.mlops-error, .mlops-panel .mlops-field-error { color: var(--mlops-error, #c62828); }
.mlops-ok { color: var(--mlops-ok, #2e7d32); }
.mlops-warn { color: var(--mlops-warn, #9a4a00); }
.mlops-cancelled { color: var(--mlops-warn, #9a4a00); }
.mlops-muted { color: var(--mlops-muted, #595959); }
.mlops-panel a, .mlops-open-link { color: var(--jp-content-link-color, #1976d2); text-decoration: underline; }
.mlops-panel h4 { margin: 0.6em 0 0.2em 0; color: var(--jp-ui-font-color0, #000); }
.mlops-box { border: var(--jp-border-width, 1px) solid var(--jp-border-color2, #e0e0e0);
  padding: 0.4em; margin: 0.3em 0; }
.mlops-taskbar { border-top: var(--jp-border-width, 1px) solid var(--jp-border-color2, #e0e0e0);
  padding-top: 0.3em; }
.mlops-table { border-collapse: collapse; max-width: 100%; }
.mlops-table td, .mlops-table th { padding: 1px 0.6em 1px 0; text-align: left; vertical-align: top;
  overflow-wrap: normal; }
.mlops-table code { overflow-wrap: anywhere; }
.mlops-table th { white-space: nowrap; }
.mlops-table td:first-child code { overflow-wrap: normal; word-break: normal; }
.mlops-table td[colspan], .mlops-table td:last-child { overflow-wrap: anywhere; }
.mlops-table-scroll { max-height: 18em; overflow-y: auto; overflow-x: hidden; }
.mlops-panel tr.mlops-violation { color: var(--mlops-error, #c62828); font-weight: bold; }
.mlops-panel tr.mlops-violation td:first-child { border-left: 3px solid var(--jp-error-color1, #d32f2f);
  padding-left: 4px; }
.mlops-response { max-height: 20em; overflow-y: auto; overflow-x: hidden; white-space: pre-wrap;
  overflow-wrap: anywhere; font-family: var(--jp-code-font-family, monospace); margin: 0.3em 0; }
.mlops-preview { display: inline-block; margin: 0.3em 0.5em 0.3em 0; }
.mlops-preview img, img.mlops-preview { max-width: 100%; max-height: 16em; }
.mlops-panel textarea { max-width: 100%; }
.mlops-charts { display: flex; flex-wrap: wrap; gap: 0.5em; }
.mlops-history { flex: 1 1 18em; max-width: 30em; min-width: 12em; height: auto; }
.mlops-history text { fill: var(--jp-ui-font-color1, #212121); font-size: 11px;
  font-family: var(--jp-ui-font-family, sans-serif); }
.mlops-history .mlops-chart-title { font-weight: bold; font-size: 12px; }
.mlops-history .mlops-frame { fill: none; stroke: var(--jp-border-color1, #bdbdbd); }
.mlops-history .mlops-grid { stroke: var(--jp-border-color3, #eeeeee); }
.mlops-history .mlops-line { fill: none; stroke: var(--jp-brand-color1, #1976d2); stroke-width: 1.5; }
.mlops-history .mlops-point { fill: var(--jp-brand-color1, #1976d2); }
.mlops-history .mlops-point.mlops-bad { fill: var(--jp-error-color1, #d32f2f); }
.mlops-history .mlops-limit { stroke: var(--jp-warn-color1, #f57c00); stroke-dasharray: 4 3; }
.mlops-history text.mlops-limit-label { fill: var(--mlops-warn, #9a4a00); }
.mlops-alert-badge { display: inline-block; padding: 0 0.5em; border-radius: 0.8em; font-weight: bold;
  background: #b71c1c; color: #fff; }
</style>"""


def grow(min_em: float = 18, max_em: float = 40) -> w.Layout:
    """A field that fills its row, no narrower than `min_em` (it wraps below instead) nor wider
    than `max_em`. Its flex basis is a width: placed straight in a column (a VBox) the
    stylesheet sets it back to the field's own height."""
    return w.Layout(width="auto", flex=f"1 1 {min_em}em", min_width=f"{min_em}em", max_width=f"{max_em}em")


def name_only(widget: w.Widget, name: str) -> w.Widget:
    """Give a control without a visible label (a cell of a grid, a list under its heading) an
    accessible name: a label screen readers read and the eye does not see."""
    widget.description = name
    widget.add_class("mlops-sr-label")
    return widget


def fit() -> w.Layout:
    """A button (or small control) as wide as its label."""
    return w.Layout(width="auto", flex="0 0 auto")


def stylesheet() -> w.HTML:
    """The panel's stylesheet, as a widget placed once in the panel."""
    sheet = w.HTML(CSS, layout=w.Layout(display="none"))
    sheet.add_class("mlops-style")
    return sheet


def span(cls: str, text: str) -> str:
    """`text` (escaped) in a span of class `cls`."""
    return f"<span class='{cls}'>{html.escape(text)}</span>"


def code(text: object) -> str:
    """`text` (escaped: a path or a name may hold markup) as code."""
    return f"<code>{html.escape(str(text))}</code>"


TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def local_time(stamp: str | None) -> str:
    """An ISO time (records keep UTC) as the panel shows every time: this machine's local time,
    `2026-01-31 09:00:00` (docs/reference/glossary.md); what is not a time is shown as it is."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime(TIME_FORMAT)
