"""deploy_applications: ships an applications file to the operator the way Tensorlake's deploy does.

What goes over the wire (the operator's `POST /v1/namespaces/{ns}/applications`, Tensorlake's route):
  multipart/form-data with the parts
    code                             code.zip: `.tensorlake_code_manifest.json` ({"functions": {name:
                                     {"name", "module_import_name"}}}) plus every .py file under the
                                     applications file's directory, by relative path
    code_content_type                application/zip
    application                      Tensorlake's ApplicationManifest JSON, one upload per @application()
    upgrade_requests_to_latest_code  false

Configuration (as run_remote_application): TENSORLAKE_API_URL or TRELLIS_API_URL, INDEXIFY_NAMESPACE
or TRELLIS_NAMESPACE (default "default"), TENSORLAKE_API_KEY or TRELLIS_TOKEN (a bearer token).
"""

import hashlib
import importlib
import inspect
import io
import json
import math
import os
import stat
import sys
import uuid
import fnmatch
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import Any

from .interface import _registry
from .interface.decorators import is_application
from .interface.exceptions import RemoteAPIError, SDKUsageError, TensorlakeError
from .interface.function import Function
from .worker import tlmanifest

CODE_MANIFEST = ".tensorlake_code_manifest.json"
# Tensorlake's limit: application code without its dependencies is far smaller.
MAX_CODE_BYTES = 5 * 1024 * 1024
# Fixed timestamps and modes: the same sources make the same zip, hence the same version.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}


def deploy_applications(
    applications_file_path: str,
    upgrade_running_requests: bool = False,
    load_source_dir_modules: bool = False,
    api_client: Any = None,
    function_images: dict[tuple[str, str], str] | None = None,
    docker_config_json: str | None = None,
) -> None:
    """Deploys every @application() of the registry, with the code of the file's directory.

    `applications_file_path`: the .py file that defines the applications; its directory is the
        code directory (every .py file under it is shipped).
    `upgrade_running_requests`: must be False (running requests keep their code), as in Tensorlake.
    `load_source_dir_modules`: import the file first (its directory on sys.path, imported by module
        name); False when the caller already imported it (tests calling deploy_applications(__file__)).
    `api_client`: an object with `upsert_application(manifest_json=, code_zip=,
        upgrade_running_requests=)` (Tensorlake's client interface); default: HTTP to the operator.
    `function_images`: (application name, function name) -> container image, set as each function's
        `image`. Unlike Tensorlake, Trellis builds no images: without this map functions carry no
        image and run in the operator's stock runtime image. `docker_config_json` is accepted for
        compatibility and unused (nothing is built or pushed).

    Raises SDKUsageError for a bad code directory or configuration, RemoteAPIError (with
    status_code) when the operator refuses a deploy, ValueError for upgrade_running_requests=True.
    """
    if upgrade_running_requests:
        raise ValueError("upgrading running requests is not supported: running requests keep their code version")
    file_path = os.path.abspath(applications_file_path)
    code_dir = os.path.dirname(file_path)
    if load_source_dir_modules:
        load_code(file_path)
    functions = registered_functions()
    applications = [fn for fn in functions if is_application(fn)]
    if not applications:
        raise SDKUsageError(f"{file_path} defines no @application() function (nothing to deploy)")
    code = zip_code(code_dir, functions)
    manifests = [application_manifest(app, functions, code, function_images) for app in applications]
    upsert = api_client.upsert_application if api_client is not None else _HttpClient().upsert_application
    for manifest in manifests:
        upsert(manifest_json=json.dumps(manifest), code_zip=code, upgrade_running_requests=False)


def load_code(file_path: str) -> Any:
    """Imports an absolute .py path by module name with its directory on sys.path (as Tensorlake
    does), so that pickled values and the runtime name the same module."""
    if not file_path.endswith(".py") or not os.path.isfile(file_path):
        raise SDKUsageError(f"applications file {file_path} is not a .py file")
    code_dir = os.path.dirname(file_path)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    return importlib.import_module(os.path.splitext(os.path.basename(file_path))[0])


def registered_functions() -> list[Function]:
    """Every function the decorators registered, one per name (the last definition wins)."""
    by_name: dict[str, Function] = {}
    for fn in _registry.defined_since(0):
        by_name[fn._name] = fn
    return list(by_name.values())


# --- code.zip ---------------------------------------------------------------------------------


def ignored_paths(code_dir: str) -> tuple[set[str], list[str]]:
    """Absolute paths never shipped (the active venv when inside the code directory) and the
    code directory's .gitignore patterns (simple form: no negation)."""
    absolute: set[str] = set()
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        absolute.add(os.path.abspath(venv))
    patterns: list[str] = []
    try:
        with open(os.path.join(code_dir, ".gitignore"), encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith(("#", "!")):
                    patterns.append(line)
    except OSError:
        pass
    return absolute, patterns


def _gitignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        p = pattern.strip("/")
        if not p or (dir_only and not is_dir):
            continue
        if "/" in pattern.rstrip("/"):
            # Anchored at the code directory (a leading "/" or a "/" inside).
            if fnmatch.fnmatchcase(rel, p.removeprefix("**/")) or fnmatch.fnmatchcase(rel, p):
                return True
        elif fnmatch.fnmatchcase(name, p):  # no "/": matches at any depth
            return True
    return False


def code_files(code_dir: str) -> list[tuple[str, str]]:
    """(absolute path, relative path with "/") of every .py file to ship, sorted by relative path."""
    absolute, patterns = ignored_paths(code_dir)
    out: list[tuple[str, str]] = []
    # Symlinks are followed as Tensorlake does; the size cap stops a link loop.
    for dir_path, dir_names, file_names in os.walk(code_dir, followlinks=True):
        rel_dir = os.path.relpath(dir_path, code_dir).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dir_names[:] = sorted(
            d
            for d in dir_names
            if d not in _SKIPPED_DIRS
            and os.path.join(dir_path, d) not in absolute
            and not os.path.exists(os.path.join(dir_path, d, "pyvenv.cfg"))  # any other venv
            and not _gitignored(rel_dir + d, True, patterns)
        )
        for name in sorted(file_names):
            path = os.path.join(dir_path, name)
            if name.endswith(".py") and path not in absolute and not _gitignored(rel_dir + name, False, patterns):
                out.append((os.path.abspath(path), rel_dir + name))
    out.sort(key=lambda f: f[1])
    return out


def module_import_name(fn: Function, code_dir: str) -> str:
    """The module name the runtime imports `fn` by: its file's path under the code directory."""
    try:
        source = inspect.getsourcefile(fn._original_function)
    except TypeError:
        source = None
    if source is None:
        raise SDKUsageError(f"{fn} is not defined in a file of the code directory {code_dir}")
    source = os.path.abspath(source)
    rel = os.path.relpath(source, code_dir)
    if rel.startswith(os.pardir + os.sep) or rel == os.pardir or os.path.isabs(rel):
        raise SDKUsageError(
            f"{fn} is defined in {source}, outside the code directory {code_dir}; "
            "copy or symlink its file into the code directory"
        )
    return os.path.splitext(rel)[0].replace(os.sep, ".")


def zip_code(code_dir: str, functions: list[Function]) -> bytes:
    """code.zip in Tensorlake's layout. Raises SDKUsageError beyond MAX_CODE_BYTES of sources."""
    code_dir = os.path.abspath(code_dir)
    manifest = {
        "functions": {
            fn._name: {"name": fn._name, "module_import_name": module_import_name(fn, code_dir)}
            for fn in functions
        }
    }
    buf = io.BytesIO()
    total = 0
    shipped: list[tuple[str, int]] = []
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(_zip_info(CODE_MANIFEST, 0o644), json.dumps(manifest, sort_keys=True, separators=(",", ":")))
        for path, rel in code_files(code_dir):
            st = os.stat(path)
            if not st.st_mode & stat.S_IRUSR:
                raise SDKUsageError(f"application code file {path} is not readable by its owner; fix its permissions")
            total += st.st_size
            shipped.append((rel, st.st_size))
            # Checked per file: a symlink loop must not fill the memory first.
            if total > MAX_CODE_BYTES:
                biggest = ", ".join(f"{r} ({s} bytes)" for r, s in sorted(shipped, key=lambda x: -x[1])[:5])
                raise SDKUsageError(
                    f"application code in {code_dir} exceeds {MAX_CODE_BYTES // (1024 * 1024)} MiB "
                    f"of .py files (largest: {biggest}); list generated or vendored code in .gitignore"
                )
            with open(path, "rb") as f:
                z.writestr(_zip_info(rel, st.st_mode & 0o777), f.read())
    return buf.getvalue()


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.create_system = 3  # Unix, so that the mode below is read
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


# --- ApplicationManifest ----------------------------------------------------------------------

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", dict: "object", list: "array"}


def _parameter(p: inspect.Parameter) -> dict:
    # A small JSON schema (Tensorlake's clients draw curl templates from it); unknown types stay open.
    schema: dict[str, Any] = {"title": p.name, "x-parameter-kind": p.kind.name}
    hint = p.annotation
    if isinstance(hint, type) and hint in _JSON_TYPES:
        schema["type"] = _JSON_TYPES[hint]
    required = p.default is inspect.Parameter.empty
    if not required:
        try:
            json.dumps(p.default)
            schema["default"] = p.default
        except (TypeError, ValueError):
            pass
    return {"name": p.name, "data_type": schema, "description": None, "required": required}


def _retry_policy(retries: Any) -> dict:
    return {
        "max_retries": int(retries.max_retries),
        "initial_delay_sec": float(retries.initial_delay),
        "max_delay_sec": float(retries.max_delay),
        "delay_multiplier": float(retries.delay_multiplier),
    }


def _gpus(gpu: Any) -> list[dict]:
    specs = [] if gpu is None else [gpu] if isinstance(gpu, str) else list(gpu)
    out = []
    for spec in specs:
        model, _, count = spec.partition(":")
        try:
            out.append({"model": model, "count": int(count) if count else 1})
        except ValueError:
            raise SDKUsageError(f"invalid GPU {spec!r}: expected 'MODEL' or 'MODEL:COUNT'") from None
    return out


def function_manifest(app: Function, fn: Function) -> dict:
    cfg = fn._function_config
    app_cfg = app._application_config
    timeout = math.ceil(cfg.timeout)
    region = app_cfg.region
    parameters: list[dict] = []
    if is_application(fn):
        sig = fn._signature()
        parameters = [] if sig is None else [_parameter(p) for p in sig.parameters.values()]
    return {
        "name": fn._name,
        "description": cfg.description,
        "docstring": inspect.getdoc(fn._original_function) or "",
        "is_api": is_application(fn),
        "secret_names": list(cfg.secrets),
        # A class's init timeout bounds its container start; a plain function's start is its timeout.
        "initialization_timeout_sec": math.ceil(cfg.class_init_timeout) if cfg.class_init_timeout else timeout,
        "timeout_sec": timeout,
        "resources": {
            "cpus": float(cfg.cpu),
            "memory_mb": math.ceil(cfg.memory * 1024),
            "ephemeral_disk_mb": math.ceil(cfg.ephemeral_disk * 1024),
            "gpus": _gpus(cfg.gpu),
        },
        "retry_policy": _retry_policy(cfg.retries if cfg.retries is not None else app_cfg.retries),
        "cache_key": None,
        "parameters": parameters,
        "return_type": None,
        "placement_constraints": {"filter_expressions": [f"region=={region}"] if region else []},
        "max_concurrency": int(cfg.max_concurrency),
        "warm_containers": cfg.warm_containers,
        "min_containers": cfg.min_containers,
        "max_containers": cfg.max_containers,
    }


def application_manifest(
    app: Function,
    functions: list[Function],
    code: bytes,
    function_images: dict[tuple[str, str], str] | None = None,
) -> dict:
    """Tensorlake's ApplicationManifest for one application, as a JSON-ready dict."""
    name = app._name
    app_cfg = app._application_config
    fns = {fn._name: function_manifest(app, fn) for fn in functions}
    if function_images is not None:
        for fn_name, m in fns.items():
            image = function_images.get((name, fn_name))
            if not isinstance(image, str) or not image.strip():
                raise TensorlakeError(f"function_images has no image for function '{fn_name}' of application '{name}'")
            m["image"] = image
    manifest = {
        "name": name,
        "description": app._function_config.description,
        "tags": dict(app_cfg.tags),
        "allow": list(app_cfg.allow),
        "runtime": "python",
        "functions": fns,
        "entrypoint": {"function_name": name, **tlmanifest.entrypoint(app)},
    }
    # No user-set versions (as in Tensorlake): a hash of code and manifest, so a redeploy of the
    # same sources keeps its version and any change makes a new one.
    digest = hashlib.sha256(code)
    digest.update(json.dumps(manifest, sort_keys=True).encode())
    manifest["version"] = digest.hexdigest()[:16]
    return manifest


# --- upload -----------------------------------------------------------------------------------


class _HttpClient:
    """The operator's deploy route, with the same settings as run_remote_application."""

    def __init__(self) -> None:
        env = os.environ.get
        base = env("TENSORLAKE_API_URL") or env("TRELLIS_API_URL")
        if not base:
            raise SDKUsageError(
                "deploy_applications needs TENSORLAKE_API_URL (or TRELLIS_API_URL): the operator's HTTP API base URL"
            )
        self.base = base.rstrip("/")
        self.namespace = env("INDEXIFY_NAMESPACE") or env("TRELLIS_NAMESPACE") or "default"
        self.token = env("TENSORLAKE_API_KEY") or env("TRELLIS_TOKEN")

    def upsert_application(self, manifest_json: str, code_zip: bytes, upgrade_running_requests: bool = False) -> None:
        boundary = f"trellis-{uuid.uuid4().hex}"
        parts = [
            ('name="code"; filename="code.zip"', "application/zip", code_zip),
            ('name="code_content_type"', None, b"application/zip"),
            ('name="application"', None, manifest_json.encode("utf-8")),
            ('name="upgrade_requests_to_latest_code"', None, b"true" if upgrade_running_requests else b"false"),
        ]
        body = b""
        for disposition, content_type, data in parts:
            head = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
            if content_type:
                head += f"Content-Type: {content_type}\r\n"
            body += (head + "\r\n").encode() + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base}/v1/namespaces/{urllib.parse.quote(self.namespace, safe='')}/applications"
        app = json.loads(manifest_json).get("name")
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                resp.read()
                return
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except urllib.error.URLError as e:
            raise RemoteAPIError(0, f"deploy of application {app}: cannot reach {url}: {e.reason}") from None
        try:
            err = json.loads(raw)
        except ValueError:
            err = None
        if isinstance(err, dict) and ("message" in err or "code" in err):
            detail = f"{err.get('code', 'error')}: {err.get('message', '')}"
        else:
            detail = raw.decode("utf-8", errors="replace").strip() or "(no body)"
        raise RemoteAPIError(status, f"deploy of application {app} refused: {detail}")
