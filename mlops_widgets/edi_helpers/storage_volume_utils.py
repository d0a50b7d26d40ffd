"""storage_volume_utils: files on a storage volume, with the original team's API.

list_files, upload, download, upload_batch, download_batch, file_or_dir take the original's
arguments and return its shapes (metadata dicts with path, type, file_extension, last_modified,
size; None for a missing path). Local paths are relative to the working directory, volume paths
relative to the volume; a download keeps the volume path under the target folder, an upload
without a target keeps the local path on the volume, as the originals did. Defaults: the volume
from VOLUME_DISPLAY_NAME (else "DeepLIIFData"), the token from USER_ACCESS_TOKEN.

On the local backend (MLOPS_BACKEND=local) a volume is the folder MLOPS_VOLUMES/<volume> and
nothing but the standard library is used; elsewhere the Cloud Pak for Data volumes REST API
(`/zen-volumes/{volume}/v1/volumes/...`) is called through `requests`.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import cpd_utils

DEFAULT_VOLUME = "DeepLIIFData"
LISTFILES = "/zen-volumes/{volume}/v1/volumes/directories/{path}"
FILES = "/zen-volumes/{volume}/v1/volumes/files/{path}"
TIME_FORMAT = "%a, %d %b %Y %H:%M:%S %Z"


def fill_in_default_if_none(var, env_var=None, default=None):
    """`var`, else the environment variable `env_var`, else `default` (read at call time)."""
    if var is not None:
        return var
    return os.getenv(env_var, default) if env_var else default


def _volume(name):
    return fill_in_default_if_none(name, "VOLUME_DISPLAY_NAME", DEFAULT_VOLUME)


def _token(token):
    return fill_in_default_if_none(token, "USER_ACCESS_TOKEN")


def _clean(path) -> str:
    """A volume path as `a/b/c` (no leading `/` or `./`); `..` is refused."""
    parts = [p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"storage volume path {path!r} may not contain '..'")
    return "/".join(parts)


# --- the local backend: a volume is a folder -------------------------------------------------------


def _local_root(volume) -> Path:
    if not volume or "/" in volume or "\\" in volume or volume in (".", ".."):
        raise ValueError(f"invalid storage volume name {volume!r}")
    base = os.environ.get("MLOPS_VOLUMES") or str(cpd_utils.workspace() / "volumes")
    return Path(base) / volume


def _inside(path: Path, root: Path) -> bool:
    """Whether `path` is `root` or below it (Path.is_relative_to needs Python 3.9)."""
    return path == root or root in path.parents


def _local_path(volume, path) -> Path:
    root = _local_root(volume)
    target = root / _clean(path)
    if not _inside(target.resolve(), root.resolve()):
        raise ValueError(f"storage volume path {path!r} leads out of the volume {volume!r}")
    return target


def _meta(path: Path, rel: str) -> dict:
    st = path.stat()
    return {
        "path": rel,
        "type": "directory" if path.is_dir() else "file",
        "file_extension": "" if path.is_dir() else path.suffix,
        "last_modified": formatdate(st.st_mtime, usegmt=True),
        "size": 0 if path.is_dir() else st.st_size,
    }


def _local_list(volume, path, recursive):
    folder = _local_path(volume, path)
    if not folder.exists():
        return None
    if folder.is_file():
        return [_meta(folder, folder.name)]
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        (_meta(p, p.relative_to(folder).as_posix()) for p in found if not p.name.startswith(".")),
        key=lambda m: m["path"],
    )


def _local_write(volume, path, source: Path) -> None:
    target = _local_path(volume, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the REST API -------------------------------------------------------------------------------


def _url(template, volume, path, host_url):
    return cpd_utils.base_url(host_url) + template.format(
        volume=quote(volume, safe=""), path=quote(path, safe="")
    )


def _headers(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def _unzip_into(data: bytes, dest: Path) -> None:
    """A folder downloaded as a zip, unpacked; entries that would leave `dest` are refused."""
    root = dest.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            target = (dest / _clean(info.filename)).resolve()
            if not _inside(target, root) or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"refusing zip entry {info.filename!r} of a downloaded folder")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


# --- the original API -----------------------------------------------------------------------------


def list_files(
    path,
    volume_display_name=None,
    params=None,
    access_token=None,
    host_url=None,
    return_df=False,
    files_only=False,
    most_recent=None,
    file_extensions=None,
    verbose=0,
):
    """Metadata of the files and folders under `path` (recursive unless params say
    recursive=false), or None when the path does not exist. `most_recent`: only those modified
    in the last N days; `file_extensions`: only files with these extensions ([".png"])."""
    volume, token = _volume(volume_display_name), _token(access_token)
    params = {"include_details": "true", "recursive": "true", **(params or {})}
    recursive = str(params.get("recursive")).lower() == "true"
    if cpd_utils.is_local():
        out = _local_list(volume, path, recursive)
    else:
        url = _url(LISTFILES, volume, _clean(path) or "/", host_url)
        if verbose:
            print(url)
        resp = cpd_utils.request("GET", url, ok=(200, 404), headers=_headers(token), params=params)
        out = (
            None
            if resp.status_code == 404
            else (resp.json().get("responseObject") or {}).get("directoryContents", [])
        )
    if out is None:
        return None
    if files_only or file_extensions is not None:
        out = [m for m in out if m.get("type") == "file"]
    if file_extensions is not None:
        out = [m for m in out if m.get("file_extension") in file_extensions]
    if most_recent is not None:
        now = datetime.now(timezone.utc)  # noqa: UP017  (kernels may run on Python < 3.11)
        out = [
            m
            for m in out
            if (now - datetime.strptime(m["last_modified"], TIME_FORMAT).replace(tzinfo=timezone.utc)).days  # noqa: UP017
            <= most_recent
        ]
    if return_df:
        import pandas as pd

        return pd.DataFrame(out)
    return out


def file_or_dir_guess(path) -> str:
    """ "file" when the last part of `path` has a dot, else "directory" (for paths not there yet)."""
    return "file" if "." in str(path).rstrip("/").split("/")[-1] else "directory"


def file_or_dir(path, volume_display_name=None, access_token=None, host_url=None) -> str:
    """ "file" or "directory": what `path` is on the volume, guessed from its name when absent."""
    clean = _clean(path)
    if not clean:
        return "directory"
    parent, _, base = clean.rpartition("/")
    listing = list_files(parent, volume_display_name, {"recursive": "false"}, access_token, host_url)
    match = [m for m in listing or [] if m["path"] == base]
    return match[0]["type"] if match else file_or_dir_guess(clean)


def _local_files(path) -> list[str]:
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files)


def upload(
    path_source,
    path_target=None,
    volume_display_name=None,
    access_token=None,
    host_url=None,
    keep_source_folder_structure=True,
):
    """Upload a local file or folder (one file at a time). Without `path_target`, each file goes
    to the same relative path on the volume; into a folder `path_target`, with the local path
    kept under it unless `keep_source_folder_structure` is False (then the file name only)."""
    volume, token = _volume(volume_display_name), _token(access_token)
    if not os.path.exists(path_source):
        raise FileNotFoundError(f"local path {path_source} does not exist")
    uploaded = []
    for source in _local_files(path_source):
        target = source if path_target is None else path_target
        if file_or_dir(target, volume, token, host_url) == "directory":
            tail = source if keep_source_folder_structure else os.path.basename(source)
            target = f"{target}/{tail}"
        elif not keep_source_folder_structure:
            target = os.path.basename(source)
        target = _clean(target)
        if cpd_utils.is_local():
            _local_write(volume, target, Path(source))
        else:
            with open(source, "rb") as fh:
                cpd_utils.request(
                    "PUT",
                    _url(FILES, volume, target, host_url),
                    headers=_headers(token),
                    files={"upFile": (os.path.basename(source), fh)},
                )
        uploaded.append(target)
    return uploaded


def upload_batch(l_path_source, path_target=None, volume_display_name=None, access_token=None, host_url=None):
    """`upload` for each path of a list."""
    return [
        t for p in l_path_source for t in upload(p, path_target, volume_display_name, access_token, host_url)
    ]


def download(
    path_source,
    path_target=None,
    volume_display_name=None,
    params=None,
    access_token=None,
    host_url=None,
    verbose=0,
):
    """Download a file or a folder from the volume to `path_target` (default: the same relative
    path here); into an existing local folder the volume path is kept under it."""
    volume, token = _volume(volume_display_name), _token(access_token)
    source = _clean(path_source)
    target = source if path_target is None else str(path_target)
    if path_target is not None and os.path.isdir(target):
        target = os.path.join(target, source)
    if cpd_utils.is_local():
        local = _local_path(volume, source)
        if not local.exists():
            raise FileNotFoundError(f"{source} is not on the storage volume {volume}")
        if local.is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            shutil.copy2(local, target)
    else:
        is_dir = file_or_dir(source, volume, token, host_url) == "directory"
        query = {**(params or {}), **({"compress": "zip"} if is_dir else {})}
        resp = cpd_utils.request(
            "GET", _url(FILES, volume, source, host_url), headers=_headers(token), params=query
        )
        if is_dir:
            _unzip_into(resp.content, Path(target))
        else:
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(resp.content)
    if verbose:
        print(f"Success, downloaded to {target}")
    return target


def download_batch(
    l_path_source,
    path_target=None,
    volume_display_name=None,
    params=None,
    access_token=None,
    host_url=None,
    verbose=0,
):
    """`download` for each path of a list."""
    return [
        download(p, path_target, volume_display_name, params, access_token, host_url, verbose)
        for p in l_path_source
    ]
