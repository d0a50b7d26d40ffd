"""wml_sdk_utils: data assets of a deployment space, with the original team's API.

`get_client(credentials, space_id)` returns a client with the space set: on Cloud Pak for Data
IBM's Watson Machine Learning client (ibm-watson-machine-learning, or ibm-watsonx-ai when that is
what is installed or MLOPS_CPD_SDK=watsonx); on the local backend (MLOPS_BACKEND=local) a small
client of the workspace's space offering the same `data_assets` calls, standard library only.
`list_files`, `download`, `upload` and the batch forms work on either, with the original's
arguments and return shapes (`{asset_id: name}`; the newest asset of a name is downloaded).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import uuid
import zipfile
from datetime import datetime, timezone

import cpd_utils

# --- the local space ----------------------------------------------------------------------------


class _LocalDataAssets:
    """The `data_assets` calls of IBM's client, on the workspace's space (its SQLite index and
    `assets/` folder, as mlops-widgets' local space keeps them)."""

    def __init__(self, client):
        self._client = client

    def _connect(self):
        conn = sqlite3.connect(cpd_utils.workspace() / "mlops.db", timeout=60, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return contextlib.closing(conn)

    def get_details(self, asset_id=None):
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT asset_id, name, size, created_at FROM space_assets ORDER BY seq DESC"
            ).fetchall()
        resources = []
        for r in rows:
            created = datetime.fromisoformat(r["created_at"])
            resources.append(
                {
                    "metadata": {
                        "asset_id": r["asset_id"],
                        "name": r["name"],
                        "size": r["size"],
                        "created_at": r["created_at"],
                        "space_id": self._client.default_space_id,
                        "usage": {"last_update_time": int(created.timestamp() * 1000)},
                    }
                }
            )
        if asset_id is not None:
            for res in resources:
                if res["metadata"]["asset_id"] == asset_id:
                    return res
            raise LookupError(f"no data asset {asset_id} in space {self._client.default_space_id}")
        return {"resources": resources}

    def download(self, asset_id, filename):
        self.get_details(asset_id)
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        shutil.copyfile(cpd_utils.workspace() / "assets" / asset_id, filename)
        return filename

    def create(self, name, file_path):
        folder = cpd_utils.workspace() / "assets"
        folder.mkdir(parents=True, exist_ok=True)
        asset_id = str(uuid.uuid4())
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, open(file_path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp, folder / asset_id)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        created = datetime.now(timezone.utc).isoformat(timespec="microseconds")  # noqa: UP017  (any Python 3)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO space_assets (asset_id, name, size, created_at) VALUES (?, ?, ?, ?)",
                (asset_id, name, os.path.getsize(folder / asset_id), created),
            )
        return self.get_details(asset_id)

    def delete(self, asset_id):
        with self._connect() as conn:
            if conn.execute("DELETE FROM space_assets WHERE asset_id = ?", (asset_id,)).rowcount == 0:
                raise LookupError(f"no data asset {asset_id} in space {self._client.default_space_id}")
        (cpd_utils.workspace() / "assets" / asset_id).unlink(missing_ok=True)


class _LocalSet:
    def __init__(self, client):
        self._client = client

    def default_space(self, space_id):
        if space_id != self._client.space_id:
            raise LookupError(
                f"the workspace {cpd_utils.workspace()} holds space {self._client.space_id}, not {space_id}"
            )
        self._client.default_space_id = space_id
        return "SUCCESS"


class LocalClient:
    """The local workspace's space, shaped like the parts of IBM's client the helpers use."""

    def __init__(self):
        db = cpd_utils.workspace() / "mlops.db"
        if not db.is_file():
            raise RuntimeError(f"no mlops-widgets workspace at {cpd_utils.workspace()}")
        with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
            row = conn.execute("SELECT value FROM space_meta WHERE key = 'space_id'").fetchone()
        self.space_id = row[0] if row else None
        self.default_space_id = None
        self.data_assets = _LocalDataAssets(self)
        self.set = _LocalSet(self)


# --- the original API -----------------------------------------------------------------------------


def _cluster_version(url):
    """The cluster's Watson Machine Learning version as "major.minor" (e.g. "4.8")."""
    for path in ("/ml/wml_services/v2/version", "/ml/wml_services/version"):
        resp = cpd_utils.request("GET", url + path, ok=(200, 404))
        if resp.status_code == 200 and resp.json().get("version"):
            return ".".join(str(resp.json()["version"]).split(".")[:2])
    raise RuntimeError(f"{url} does not report a Watson Machine Learning version")


def _cluster_client(credentials, space_id):
    """IBM's client for the cluster: ibm-watson-machine-learning before Cloud Pak for Data 5.0,
    ibm-watsonx-ai from 5.0 on (MLOPS_CPD_SDK=wml|watsonx forces one), as the original
    team's helper built the first."""
    creds = dict(credentials or {})
    creds["url"] = cpd_utils.base_url(creds.get("url"))
    if not any(creds.get(k) for k in ("token", "apikey", "password")):
        if os.getenv("USERNAME") and os.getenv("APIKEY"):
            creds.update(username=os.environ["USERNAME"], apikey=os.environ["APIKEY"])
        else:
            creds["token"] = os.environ["USER_ACCESS_TOKEN"]
    creds = {k: v for k, v in creds.items() if v}
    creds.setdefault("instance_id", "openshift")
    creds.setdefault("version", _cluster_version(creds["url"]))
    kind = (os.getenv("MLOPS_CPD_SDK") or "").lower() or ("wml" if creds["version"] < "5" else "watsonx")
    if kind == "wml":
        from ibm_watson_machine_learning import APIClient

        client = APIClient(creds)
        if space_id is not None:
            client.set.default_space(space_id)
        return client
    from ibm_watsonx_ai import APIClient, Credentials

    names = {
        "url": "url",
        "token": "token",
        "username": "username",
        "apikey": "api_key",
        "api_key": "api_key",
        "password": "password",
        "version": "version",
    }  # watsonx.ai tells the platform from the url
    fields = {names[k]: v for k, v in creds.items() if k in names}
    return APIClient(Credentials(**fields, verify=cpd_utils.verify()), space_id=space_id)


def get_client(credentials=None, space_id=None):
    """A client with the space `space_id` set: credentials {"url", "username", "apikey"} or
    {"url", "token"} (default: USERNAME and APIKEY, else USER_ACCESS_TOKEN, with BASE_URL); on
    the local backend the workspace's space (credentials are not needed)."""
    if cpd_utils.is_local():
        client = LocalClient()
        client.set.default_space(space_id or client.space_id)
        return client
    return _cluster_client(credentials, space_id)


def _newest_first(resources):
    def stamp(res):
        meta = res.get("metadata", {})
        return (meta.get("usage") or {}).get("last_update_time") or 0

    return sorted(resources, key=stamp, reverse=True)


def list_files(wml_client, keep_only_latest=False, include_details=False, ext=None):
    """The space's data assets as {asset_id: name} (or {asset_id: details} with
    include_details), newest first; keep_only_latest keeps one per name; ext filters names."""
    out = {}
    seen = set()
    for res in _newest_first(wml_client.data_assets.get_details()["resources"]):
        meta = res["metadata"]
        name = meta["name"]
        if (keep_only_latest and name in seen) or (ext is not None and not name.endswith(ext)):
            continue
        seen.add(name)
        if include_details:
            out[meta["asset_id"]] = {
                "name": name,
                "created_at": meta.get("created_at"),
                "last_updated_at": meta.get("last_updated_at", meta.get("created_at")),
            }
        else:
            out[meta["asset_id"]] = name
    return out


def download(fn, wml_client, path_target=None, return_status=False):
    """Download the data asset named `fn` (the newest of several) to `path_target` (default: `fn`
    here; into an existing folder under its name). Returns True/False with return_status."""
    target = fn if path_target is None else str(path_target)
    if os.path.isdir(target):
        target = os.path.join(target, fn)
    ids = [asset_id for asset_id, name in list_files(wml_client).items() if name == fn]
    if not ids:
        print(f"Cannot find data asset name {fn} in deployment space {wml_client.default_space_id}")
        if return_status:
            return False
        return None
    if len(ids) > 1:
        print(f"Found {len(ids)} data assets named {fn}: downloading the newest, {ids[0]}")
    wml_client.data_assets.download(ids[0], target)
    return True if return_status else None


def download_batch(l_fn, wml_client, path_target=None):
    """`download` for each asset name of a list (`path_target` should be a folder)."""
    for fn in l_fn:
        download(fn, wml_client, path_target)


def upload(path, wml_client, fn_target=None, overwrite=False):
    """Upload a file, or a folder as `<folder>.zip`, as a data asset named `fn_target` (default:
    the file name); `overwrite` deletes the older assets of that name once the new one is in."""
    is_dir = os.path.isdir(path)
    name = fn_target or (os.path.basename(os.path.normpath(path)) + (".zip" if is_dir else ""))
    older = [asset_id for asset_id, n in list_files(wml_client).items() if n == name]
    with tempfile.TemporaryDirectory() as tmp:
        source = path
        if is_dir:
            source = os.path.join(tmp, name)
            with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zf:
                for folder, _, files in os.walk(path):
                    for f in files:
                        full = os.path.join(folder, f)
                        zf.write(full, os.path.relpath(full, path))
        details = wml_client.data_assets.create(name, source)
    if overwrite:
        for asset_id in older:
            wml_client.data_assets.delete(asset_id)
    print(f"Finished publishing {path} as {name}")
    return details


def upload_batch(l_path, wml_client, overwrite=False):
    """`upload` for each path of a list."""
    for path in l_path:
        upload(path, wml_client, overwrite=overwrite)
