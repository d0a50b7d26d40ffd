"""The Prepare tab's monitors: one form per monitor of the entry (where its images are, its
thresholds grid), each folded under a button so an 18-metric grid does not push Stage off screen."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from mlops_widgets.config.problems import Problem, join_path
from mlops_widgets.widgets._forms import WARN, number_text, read_number
from mlops_widgets.widgets._hints import CONTROLS
from mlops_widgets.widgets._style import LABEL, fit, grow, name_only

if TYPE_CHECKING:
    from mlops_widgets.widgets.prepare import PrepareTab

PROVIDERS = "openscale_custom_metric_provider"
STYLE = LABEL


def plain(value: float) -> float | int:
    """1.0 -> 1: the YAML keeps the numbers as a person writes them."""
    return int(value) if float(value).is_integer() else value


class ThresholdRow:
    """One metric of a monitor: its limit value (kept as typed) and direction, with the range
    the metric runs in beside its name."""

    def __init__(self, form: MonitorForm, metric: str, value: float | str, direction: str) -> None:
        self.metric = metric
        span = form.definition.ranges.get(metric) if form.definition else None
        self.range = span.text() if span is not None else ""
        label = f"{metric} ({self.range})" if span is not None else metric
        self.label = w.Label(label, layout=w.Layout(width="auto", min_width="0"))
        self.value = number_text(
            "",
            plain(value) if isinstance(value, int | float) else value,
            css=f"mlops-threshold-{metric}",
            layout=w.Layout(width="auto", min_width="0"),
            tooltip=f"{metric}: threshold" + (f" ({self.range})" if self.range else ""),
        )
        self.direction = w.Dropdown(
            options=["lower", "upper"],
            value=direction,
            layout=w.Layout(width="auto", min_width="0"),
            tooltip=f"{metric}: lower or upper limit",
        )
        name_only(self.value, f"{metric} threshold")
        name_only(self.direction, f"{metric} limit side")
        self.remove = w.Button(icon="times", tooltip=f"remove {metric} (its default applies)", layout=fit())
        self.error = form.tab.errors.label(join_path(form.thresholds_path, metric), name=metric)
        for widget in (self.value, self.direction):
            widget.observe(lambda _: form.tab.validate(), "value")
        self.remove.on_click(lambda _: form.remove_row(metric))

    @property
    def widgets(self) -> list[w.Widget]:
        return [self.label, self.value, self.direction, self.remove, self.error]

    def number(self) -> float | int:
        """The limit typed (ValueError: not a number)."""
        return plain(read_number(self.value.value))

    def to_config(self) -> dict[str, list[Any]]:
        return {"threshold": [self.number(), self.direction.value]}


class MonitorForm:
    """One monitor of the entry: where its images are and its thresholds grid (a metric left out
    keeps the definition's default, as in the YAML)."""

    def __init__(self, tab: PrepareTab, monitor_id: str, settings: dict[str, Any]) -> None:
        from mlops_widgets.config.monitor_settings import base_definition

        self.tab = tab
        self.id = monitor_id
        self.definition = base_definition(monitor_id, tab.ctx.definitions)
        self.path = join_path(PROVIDERS, monitor_id)
        self.thresholds_path = join_path(self.path, "thresholds")
        errors = tab.errors
        self.title = w.HTML(self._title_html())
        self.remove = w.Button(description="Remove", icon="trash", layout=fit())
        self.remove.add_class("mlops-remove-monitor")
        self.remove.on_click(
            lambda _: tab.confirm.ask(
                f"Remove monitor {self.id}?",
                f"Monitor {self.id} and its thresholds are removed from this form.",
                "Remove",
                lambda: tab.remove_monitor(self.id),
            )
        )

        def text(key: str, label: str, hint: str) -> w.Text:
            return w.Text(
                value=str(settings.get(key) or ""),
                description=label,
                placeholder=hint,
                tooltip=key,
                style=STYLE,
                layout=grow(),
            )

        self.dir_gt = text("dir_gt", CONTROLS["dir_gt"], "folder on the storage volume")
        self.dir_pred = text("dir_pred", CONTROLS["dir_pred"], "folder on the storage volume")
        self.volume = text("volume_display_name", CONTROLS["volume_display_name"], "storage volume name")
        recent = settings.get("most_recent")
        self.most_recent = number_text(
            CONTROLS["most_recent"],
            recent if isinstance(recent, int) and not isinstance(recent, bool) else 7,
            style=STYLE,
            tooltip="most_recent: only images modified in the last this many days count",
        )
        self.rows: dict[str, ThresholdRow] = {}
        for metric, cfg in (settings.get("thresholds") or {}).items():
            value, direction = self._limit(cfg)
            self.rows[metric] = ThresholdRow(self, metric, value, direction)
        self.grid = w.GridBox(
            layout=w.Layout(
                grid_template_columns="minmax(8em, 16em) minmax(5em, 8em) minmax(5em, 7em) auto minmax(0, 1fr)",
                grid_gap="2px 6px",
                max_width="100%",
            )
        )
        self.new_metric = name_only(
            w.Combobox(placeholder="metric name", ensure_option=False, layout=grow()), "Metric to add"
        )
        self.add_metric = w.Button(description="Add metric", icon="plus", layout=fit())
        self.add_metric.on_click(lambda _: self.add_row(self.new_metric.value.strip()))
        self._fill_grid()
        fields = {
            "dir_gt": self.dir_gt,
            "dir_pred": self.dir_pred,
            "volume_display_name": self.volume,
            "most_recent": self.most_recent,
        }
        rows = []
        for key, widget in fields.items():
            widget.add_class(f"mlops-monitor-{key}")
            widget.observe(lambda _: tab.validate(), "value")
            rows.append(w.HBox([widget, errors.label(join_path(self.path, key), widget)]))
        self.widget = w.VBox(
            [
                w.HBox([self.title, self.remove]),
                errors.label(self.path),
                *rows,
                w.HTML(
                    "<b>thresholds</b> <span class='mlops-muted'>(lower: a value below it is a "
                    "violation; upper: a value above it)</span>"
                ),
                errors.label(self.thresholds_path),
                self.grid,
                w.HBox([self.new_metric, self.add_metric]),
            ],
        )
        self.widget.add_class("mlops-box")
        self.widget.add_class(f"mlops-monitor-{monitor_id}")
        # A fold of its own with a real button as its header (keyboard-operable, its state
        # announced): an 18-metric grid would push Stage off screen.
        self.header = w.ToggleButton(description=self.heading(), icon="caret-right", layout=fit())
        self.header.add_class("mlops-monitor-header")
        self.header.observe(lambda _: self._fold(), "value")
        self.section = w.VBox([self.header, self.widget])
        self._fold()

    @property
    def open(self) -> bool:
        return bool(self.header.value)

    def _fold(self) -> None:
        self.widget.layout.display = "" if self.header.value else "none"
        self.header.icon = "caret-down" if self.header.value else "caret-right"
        self.header.tooltip = ("fold " if self.header.value else "show ") + self.id

    def heading(self) -> str:
        """The monitor's fold title."""
        if self.definition is None:
            return f"{self.id} (not known locally)"
        return f"{self.id} — {self.definition.name}"

    def _title_html(self) -> str:
        title = f"<b>{html.escape(self.id)}</b>"
        if self.definition is None:
            return title + (
                f" <span class='{WARN}'>(not known locally: it may exist "
                "on the server; its metric names cannot be checked here)</span>"
            )
        return title + f" — {html.escape(self.definition.name)}"

    def input_problems(self) -> list[Problem]:
        """Number fields whose text is no number (the entry leaves them out)."""
        out = []
        try:
            read_number(self.most_recent.value, integer=True)
        except ValueError as exc:
            out.append(Problem(join_path(self.path, "most_recent"), str(exc)))
        for metric, row in self.rows.items():
            try:
                row.number()
            except ValueError as exc:
                out.append(Problem(join_path(self.thresholds_path, metric), str(exc)))
        return out

    @staticmethod
    def _limit(cfg: Any) -> tuple[float, str]:
        """(value, direction) of `{threshold: [v, dir]}` (validated already when loaded)."""
        try:
            value, direction = cfg["threshold"]
            return float(value), direction if direction in ("lower", "upper") else "lower"
        except (TypeError, KeyError, ValueError):
            return 0.0, "lower"

    def _fill_grid(self) -> None:
        self.grid.children = [x for row in self.rows.values() for x in row.widgets]
        known = self.definition.metric_names if self.definition else []
        self.new_metric.options = [m for m in known if m not in self.rows]

    def add_row(self, metric: str) -> None:
        """Add a metric, prefilled with the definition's default threshold when it has one."""
        if not metric or metric in self.rows:
            return
        default = self.definition.thresholds.get(metric) if self.definition else None
        value, direction = (default.value, default.direction) if default else (0.0, "lower")
        self.rows[metric] = ThresholdRow(self, metric, value, direction)
        self.new_metric.value = ""
        self._fill_grid()
        self.tab.validate()

    def remove_row(self, metric: str) -> None:
        self.rows.pop(metric, None)
        self.tab.errors.forget(join_path(self.thresholds_path, metric))
        self._fill_grid()
        self.tab.validate()

    def to_config(self) -> dict[str, Any]:
        """The monitor's settings; a number field that holds no number is left out (said
        beside it by `input_problems`)."""
        thresholds = {}
        for metric, row in self.rows.items():
            try:
                thresholds[metric] = row.to_config()
            except ValueError:
                pass
        try:
            recent = read_number(self.most_recent.value, integer=True)
        except ValueError:
            recent = 7  # said beside the field; the required key stays
        return {
            "dir_gt": self.dir_gt.value.strip(),
            "dir_pred": self.dir_pred.value.strip(),
            "volume_display_name": self.volume.value.strip(),
            "most_recent": recent,
            "thresholds": thresholds,
        }
