"""Application code shipped as a ZIP (what Tensorlake's deploy uploads): safe extraction and the
modules to import.

A Tensorlake code zip holds the .py files under their paths relative to the code directory plus
`.tensorlake_code_manifest.json`: {"functions": {name: {"name", "module_import_name"}}}.
"""

import atexit
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile

from ..interface.exceptions import SDKUsageError

MANIFEST = ".tensorlake_code_manifest.json"
# Tensorlake refuses more than 5 MB of code; the caps leave room and stop zip bombs.
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = 10_000
_CHUNK = 1024 * 1024
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*").fullmatch


def extract(path: str) -> str:
    """Extracts the zip at `path` into a new private directory (removed at exit); returns it."""
    if not os.path.isfile(path):
        raise SDKUsageError(f"code zip {path} does not exist")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SDKUsageError(f"code zip {path} is not a readable ZIP archive: {e}") from None
    target = tempfile.mkdtemp(prefix="trellis-code-")
    atexit.register(shutil.rmtree, target, True)
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise SDKUsageError(f"code zip {path} has {len(infos)} entries; at most {MAX_ENTRIES} are allowed")
        budget = MAX_TOTAL_BYTES
        for info in infos:
            try:
                budget = _extract_one(archive, info, target, path, budget)
            except (OSError, zipfile.BadZipFile, NotImplementedError) as e:
                raise SDKUsageError(f"code zip {path}: cannot extract {info.filename!r}: {e}") from None
    return target


def _safe_parts(name: str, path: str) -> list[str]:
    # Only plain relative paths: nothing may land outside the target directory.
    if not name or "\\" in name or "\0" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise SDKUsageError(f"code zip {path}: entry {name!r} has an absolute or unsafe path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SDKUsageError(f"code zip {path}: entry {name!r} points outside the archive ('..')")
    return parts


def _extract_one(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: str, path: str, budget: int) -> int:
    parts = _safe_parts(info.filename, path)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise SDKUsageError(f"code zip {path}: entry {info.filename!r} is a symbolic link, which is not allowed")
    dest = os.path.join(target, *parts)
    if info.is_dir() or not parts:
        os.makedirs(dest, mode=0o755, exist_ok=True)
        return budget
    if info.file_size > budget:
        raise _too_big(path)
    os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
    try:
        out = open(dest, "xb")
    except FileExistsError:
        raise SDKUsageError(f"code zip {path}: entry {info.filename!r} appears twice") from None
    with out, archive.open(info) as src:
        # Counted while reading: the sizes in the headers may lie.
        while chunk := src.read(_CHUNK):
            budget -= len(chunk)
            if budget < 0:
                raise _too_big(path)
            out.write(chunk)
    os.chmod(dest, 0o644)
    return budget


def _too_big(path: str) -> SDKUsageError:
    return SDKUsageError(
        f"code zip {path} holds more than {MAX_TOTAL_BYTES // (1024 * 1024)} MB of files; "
        "ship only the application's source code"
    )


def modules(root: str) -> list[str]:
    """The modules to import: every distinct module_import_name of the manifest, in its order;
    without a manifest, every top-level .py file (by name)."""
    manifest_path = os.path.join(root, MANIFEST)
    if not os.path.isfile(manifest_path):
        found = sorted(f[:-3] for f in os.listdir(root) if f.endswith(".py") and os.path.isfile(os.path.join(root, f)))
        if not found:
            raise SDKUsageError("code zip has neither a manifest nor any top-level .py file")
        return found
    try:
        with open(manifest_path, encoding="utf-8") as f:
            functions = json.load(f)["functions"]
        names = [entry["module_import_name"] for entry in functions.values()]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SDKUsageError(
            f"code zip manifest {MANIFEST} is malformed (want {{\"functions\": {{name: "
            f"{{\"name\", \"module_import_name\"}}}}}}): {type(e).__name__}: {e}"
        ) from None
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not _MODULE_NAME(name):
            raise SDKUsageError(f"code zip manifest {MANIFEST}: {name!r} is not a module name")
        if name not in out:
            out.append(name)
    return out
