"""The cpd space against the fake Cloud Pak for Data, through both WML SDKs."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import DEPLOYMENT_METADATA, MONITOR_METADATA, Backend
from mlops_widgets.backends.cpd.space import MARKER
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace


@pytest.fixture(params=["4.8.5", "5.1.0"], ids=["wml-sdk", "watsonx-sdk"])
def cpd_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_sdk_is_chosen_by_the_cluster_version(cpd_backend: Backend, cpd_version: str) -> None:
    kind = cpd_backend.session.sdk_kind()  # type: ignore[attr-defined]
    assert kind == ("wml" if cpd_version.startswith("4.") else "watsonx")


def test_assets_round_trip(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    space = cpd_backend.space
    assert space.space_id == fake_cpd.space_id
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (model / "sub" / "conf.json").write_text("{}")
    single = tmp_path / "notes.txt"
    single.write_text("hello")

    folder_asset = space.upload(model)
    file_asset = space.upload(single)
    again = space.upload(single)  # several assets may share a name

    assert folder_asset.name == "model.zip"
    assert {a.asset_id for a in space.list_assets()} == {
        folder_asset.asset_id,
        file_asset.asset_id,
        again.asset_id,
    }
    assert [a.asset_id for a in space.list_assets("notes.txt")] == [again.asset_id, file_asset.asset_id]
    assert [a.asset_id for a in space.list_assets(keep_only_latest=True) if a.name == "notes.txt"] == [
        again.asset_id
    ]
    assert space.get_asset(file_asset.asset_id).size == 5

    zipped = space.download(folder_asset.asset_id, tmp_path / "out" / "model.zip")
    with zipfile.ZipFile(zipped) as zf:
        assert sorted(zf.namelist()) == ["sub/conf.json", "weights.bin"]
        assert zf.read("weights.bin") == b"\x00\x01" * 1000

    space.delete(file_asset.asset_id)
    with pytest.raises(NotFoundError, match=file_asset.asset_id):
        space.get_asset(file_asset.asset_id)
    with pytest.raises(NotFoundError, match="no asset with id"):
        space.delete(file_asset.asset_id)
    with pytest.raises(NotFoundError):
        space.download("00000000-0000-0000-0000-00000000dead", tmp_path / "x")


def test_listing_reads_every_page(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    fake_cpd.wml.max_page = 2
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(str(i))
        cpd_backend.space.upload(tmp_path / f"f{i}.txt")
    assert len(cpd_backend.space.list_assets()) == 5
    assert [a.name for a in cpd_backend.space.list_assets("f3.txt")] == ["f3.txt"]
    cpd_backend.space.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"k": 1}))
    assert cpd_backend.space.read_document(DEPLOYMENT_METADATA) == {"k": 1}


def test_documents_are_versioned_data_assets(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    space = cpd_backend.space
    assert space.read_document(DEPLOYMENT_METADATA) == {}
    space.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"a1": {"model_name": "m"}}))
    written = space.update_document(DEPLOYMENT_METADATA, lambda d: {**d, "a2": {"model_name": "n"}})
    assert written == {"a1": {"model_name": "m"}, "a2": {"model_name": "n"}}
    assert space.read_document(DEPLOYMENT_METADATA) == written
    space.update_document(MONITOR_METADATA, lambda d: d.update({"generic_metrics": {}}))

    stored = [a for a in fake_cpd.wml.assets.values() if a.name == DEPLOYMENT_METADATA]
    # older generations cleaned up; the survivor names the version it was built on
    assert [a.description.split(" parent ")[0] for a in stored] == [f"{MARKER} 2"]
    assert space.list_assets() == []  # documents are not staged assets


def test_a_document_written_by_the_original_tool_is_read_and_taken_over(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    space = cpd_backend.space
    legacy = tmp_path / DEPLOYMENT_METADATA
    legacy.write_text("old-asset:\n  model_name: from the original\n")
    space.upload(legacy)
    assert space.read_document(DEPLOYMENT_METADATA) == {"old-asset": {"model_name": "from the original"}}
    space.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"new": {}}))
    assert set(space.read_document(DEPLOYMENT_METADATA)) == {"old-asset", "new"}


def test_a_concurrent_writer_in_between_is_not_lost(cpd_backend: Backend, workspace: Workspace) -> None:
    """The second writer reads, then someone else writes before it replaces the document:
    it must notice, re-read and re-apply (the original's re-upload lost the other entry)."""
    other = get_backend("cpd", workspace).space
    calls = []

    def change(doc: dict) -> None:
        calls.append(dict(doc))
        if len(calls) == 1:
            other.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"theirs": 1}))
        doc["mine"] = 2

    cpd_backend.space.update_document(DEPLOYMENT_METADATA, change)
    assert cpd_backend.space.read_document(DEPLOYMENT_METADATA) == {"theirs": 1, "mine": 2}
    assert calls == [{}, {"theirs": 1}]


def test_a_slow_upload_landing_after_newer_generations_is_not_lost(
    cpd_backend: Backend, fake_cpd: FakeCpd, workspace: Workspace
) -> None:
    """D reads generation 1; before its upload of generation 2 lands, A writes generation 2 and
    E generation 3 (which deletes generation 2): D's version is then alone in generation 2, but
    the current version (E's) is not built on it, so D must retry rather than report success.
    The interleaving happens in the fake server, while it handles D's create."""
    slow, a, e = (get_backend("cpd", workspace).space for _ in range(3))
    slow.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"base": 0}))
    fired: list[int] = []

    def others_write_first(meta: dict) -> None:
        if not fired and meta.get("description", "").startswith(f"{MARKER} 2"):
            fired.append(1)
            a.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"A": 1}))
            e.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"E": 1}))

    fake_cpd.wml.before_create = others_write_first
    written = slow.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"D": 1}))
    expected = {"base": 0, "A": 1, "E": 1, "D": 1}
    assert fired and written == expected
    assert cpd_backend.space.read_document(DEPLOYMENT_METADATA) == expected
    stored = [a.description for a in fake_cpd.wml.assets.values() if a.name == DEPLOYMENT_METADATA]
    assert len(stored) == 1 and stored[0].startswith(f"{MARKER} 4 parent ")


def test_a_version_deleted_while_its_content_uploads_is_written_again(
    cpd_backend: Backend, fake_cpd: FakeCpd, workspace: Workspace
) -> None:
    """A newer winner deletes the older generations, among them one whose content is still on
    its way: its writer's upload then fails (the SDK's "Failed while creating a data asset").
    That writer lost a round, not its update: it reads the current version and writes again."""
    space = cpd_backend.space
    space.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"base": 0}))
    removed: list[str] = []

    def newer_winner_cleans_up(asset) -> None:
        if not removed and asset.description.startswith(f"{MARKER} 2"):
            removed.append(asset.id)
            del fake_cpd.wml.assets[asset.id]

    fake_cpd.wml.before_attachment = newer_winner_cleans_up
    written = space.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"D": 1}))
    assert removed and written == {"base": 0, "D": 1}
    assert space.read_document(DEPLOYMENT_METADATA) == {"base": 0, "D": 1}
    assert [a.name for a in fake_cpd.wml.assets.values()] == [DEPLOYMENT_METADATA]


def test_a_search_that_lags_behind_writes_loses_no_update(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    """CAMS finds a new asset only after its index catches up: a writer must not take its own
    version, not yet found, for a lost race (and delete it)."""
    fake_cpd.wml.search_lag = 0.3
    space = cpd_backend.space
    space.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"first": 1}))
    space.update_document(DEPLOYMENT_METADATA, lambda d: d.update({"second": 2}))
    fake_cpd.wml.search_lag = 0.0
    assert space.read_document(DEPLOYMENT_METADATA) == {"first": 1, "second": 2}
    stored = [a.description for a in fake_cpd.wml.assets.values() if a.name == DEPLOYMENT_METADATA]
    assert len(stored) == 1 and stored[0].startswith(f"{MARKER} 2 parent ")


def test_many_concurrent_writers_lose_nothing(
    cpd_backend: Backend, fake_cpd: FakeCpd, workspace: Workspace
) -> None:
    spaces = [get_backend("cpd", workspace).space for _ in range(6)]
    for s in spaces:
        s.list_assets()  # connect first, so the writers start together
    errors: list[BaseException] = []
    start = threading.Barrier(len(spaces))

    def writer(i: int) -> None:
        try:
            start.wait(timeout=30)
            spaces[i].update_document(DEPLOYMENT_METADATA, lambda d: d.update({f"entry-{i}": i}))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(spaces))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert cpd_backend.space.read_document(DEPLOYMENT_METADATA) == {f"entry-{i}": i for i in range(6)}
    # losers removed their versions, the last winner the older generations
    assert [a.name for a in fake_cpd.wml.assets.values()] == [DEPLOYMENT_METADATA]


def test_space_needs_its_settings(
    cpd_env: dict, monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    monkeypatch.delenv("SPACE_ID")
    with pytest.raises(MlopsError, match="SPACE_ID"):
        get_backend("cpd", workspace).space  # noqa: B018
