"""User text never becomes markup, and what a browser names stays inside the folder JupyterLab
serves: the panel's file picker, its rendered answers, its Clone to and Save, without a browser
(the browser walk over every tab is tests/test_lab_xss.py)."""

from __future__ import annotations

import base64
import html
import json
from html.parser import HTMLParser

import pytest

from mlops_widgets.widgets import MLOpsPanel
from mlops_widgets.widgets._files import PathField
from mlops_widgets.widgets.deploy_tools import response_html

PAYLOAD = "<img src=x onerror=window.__xss=1>"
QUOTED = "x' onerror='window.__xss=1"
WAIT_S = 180


class _Tags(HTMLParser):
    """Every element and attribute a browser would build from a fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]


def parsed(fragment: str) -> _Tags:
    p = _Tags()
    p.feed(fragment)
    p.close()
    return p


def assert_inert(fragment: str) -> None:
    p = parsed(fragment)
    assert "img" not in p.tags and "script" not in p.tags, fragment
    assert not [a for a in p.attrs if a.startswith("on")], fragment


def test_the_file_picker_shows_a_folder_named_with_markup_as_text(tmp_path):
    base = tmp_path / "files"
    evil = base / PAYLOAD
    evil.mkdir(parents=True)
    field = PathField("Model", base=base)
    field.browse.value = True
    name = evil.name + "/"
    assert name in field.listing.options
    field.listing.value = name  # open the folder
    assert_inert(field.here.value)
    assert evil.name in html.unescape(field.here.value)

    # A folder gone by the time it is opened: "cannot list" names it, as text too.
    field.listing.value = "../"
    evil.rmdir()
    field.listing.value = name
    assert "cannot list" in field.here.value
    assert_inert(field.here.value)


def test_a_deployments_answer_cannot_break_out_of_an_image_preview():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 300).decode()
    answer = json.dumps({"image": png + QUOTED, "note": PAYLOAD}).encode()
    shown = response_html(answer)
    p = parsed(shown)
    assert p.tags.count("img") == 1  # the preview itself, and nothing else
    assert not [a for a in p.attrs if a.startswith("on")], shown
    assert "window.__xss" in html.unescape(shown)  # shown, as text


@pytest.fixture
def panel_with_a_run(workspace, tmp_path):
    from mlops_widgets.runner import run_template

    record = run_template(
        "C1_OpenScale_Dummy_ML_Provider", {"service_provider_name": PAYLOAD}, workspace=workspace.root
    )
    assert record.ok, record.error
    panel = MLOpsPanel(workspace=workspace)
    panel.ctx.base = tmp_path / "notebooks"
    panel.ctx.base.mkdir()
    panel.runs.refresh()
    panel.runs.pick.value = record.run_id
    yield panel, record
    assert panel.wait(WAIT_S)


def test_run_details_show_parameters_named_with_markup_as_text(panel_with_a_run):
    panel, _ = panel_with_a_run
    assert PAYLOAD in html.unescape(panel.runs.details.value)
    assert_inert(panel.runs.details.value.replace("<a class='mlops-open-link'", "<span"))


@pytest.mark.parametrize("dest", ["{tmp}/nonexistent/dir/x.ipynb", "../outside/x.ipynb", "link/x.ipynb"])
def test_clone_to_outside_the_root_is_refused_and_creates_nothing(panel_with_a_run, tmp_path, dest):
    panel, _ = panel_with_a_run
    (panel.ctx.base / "link").symlink_to(tmp_path, target_is_directory=True)  # a link out of the root
    runs = panel.runs
    runs.clone_dest.value = dest.format(tmp=tmp_path)
    runs.clone.button.click()
    assert "must be inside the folder JupyterLab shows" in html.unescape(runs.message.value)
    assert not (tmp_path / "nonexistent").exists() and not (tmp_path / "outside").exists()
    assert not (tmp_path / "x.ipynb").exists()

    runs.clone_dest.value = "mine.ipynb"  # inside: cloned
    runs.clone.button.click()
    assert (panel.ctx.base / "mine.ipynb").is_file()


def test_saving_the_yaml_outside_the_root_is_refused(panel_with_a_run, example_paths, tmp_path):
    panel, _ = panel_with_a_run
    pr = panel.prepare
    for field in (pr.path_model, pr.path_dependency, pr.yaml_path):
        field.base = panel.ctx.base
    pr.yaml_path.value = str(example_paths.config)
    pr.load.button.click()
    pr.yaml_path.value = str(tmp_path / "elsewhere" / "saved.yml")
    pr.save.button.click()
    assert "must be inside the folder JupyterLab shows" in html.unescape(pr.yaml_message.value)
    assert not (tmp_path / "elsewhere").exists()
