"""Drives Trellis with Tensorlake's own client (the `tensorlake` package from PyPI, in the venv the
end-to-end test makes). Run with that venv's python; TENSORLAKE_API_URL, TENSORLAKE_API_KEY and
INDEXIFY_NAMESPACE select the operator, the Kubernetes token and the namespace.

    driver.py deploy FILE IMAGE   deploy_applications(FILE) with every function on IMAGE
    driver.py run APP ARGS_JSON   run_remote_application(APP, *args).output()
    driver.py case NAME           one of CASES below (inputs built with the features app's types)
    driver.py delete APP          Tensorlake's APIClient.delete_application(APP)

Prints one JSON line last: {"ok": true, ...} or {"ok": false, "stage": ..., "error": {"type",
"message"}}. Every call is bounded by TL_DRIVER_TIMEOUT seconds (default 90): a client that waits
forever (e.g. for an SSE event that never comes) is reported as a timeout of that stage.
"""

import importlib
import json
import os
import sys
import threading
import time
import urllib.request
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = os.path.join(HERE, "apps", "tensorlake_features.py")
TIMEOUT = float(os.environ.get("TL_DRIVER_TIMEOUT", "90"))


def emit(result: dict) -> None:
    print(json.dumps(result, default=repr), flush=True)


def error_of(e: BaseException) -> dict:
    return {
        "type": type(e).__name__,
        "module": type(e).__module__,
        "message": str(e),
        "mro": [c.__name__ for c in type(e).__mro__],
    }


def bounded(stage: str, fn: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Runs fn in a thread; on a timeout prints the failure and exits (the thread may be stuck)."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        emit({"ok": False, "stage": stage, "error": {"type": "DriverTimeout", "message": f"{stage} did not return within {timeout:.0f} s"}})
        os._exit(3)
    if "error" in box:
        raise StageError(stage, box["error"])
    return box.get("value")


class StageError(Exception):
    def __init__(self, stage: str, cause: BaseException):
        super().__init__(stage)
        self.stage = stage
        self.cause = cause


def import_file(path: str):
    """Imports an application file the way Tensorlake's loader does: its directory on sys.path."""
    directory, name = os.path.split(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return importlib.import_module(os.path.splitext(name)[0])


def jsonable(value: Any) -> Any:
    from pydantic import BaseModel
    from tensorlake.applications import File

    if isinstance(value, BaseModel):
        return {"__type__": type(value).__name__, "value": value.model_dump(mode="json")}
    if isinstance(value, File):
        return {
            "__type__": "File",
            "content_type": value.content_type,
            "content": value.content.decode("utf-8", "backslashreplace"),
        }
    if isinstance(value, (bytes, bytearray)):
        return {"__type__": "bytes", "content": bytes(value).decode("utf-8", "backslashreplace")}
    return value


# ---- deploy ----------------------------------------------------------------------------------


def deploy(path: str, image: str) -> dict:
    from tensorlake.applications.applications import filter_applications
    from tensorlake.applications.registry import get_functions
    from tensorlake.applications.remote.deploy import deploy_applications

    path = os.path.abspath(path)
    import_file(path)
    functions = get_functions()
    apps = [a._function_config.function_name for a in filter_applications(functions)]
    names = [f._function_config.function_name for f in functions]
    # Images given: deploy_applications builds none; every function runs the stock runtime image.
    images = {(a, f): image for a in apps for f in names}
    started = time.monotonic()
    bounded("deploy_applications", lambda: deploy_applications(path, function_images=images))
    return {"ok": True, "applications": sorted(apps), "functions": sorted(names), "seconds": round(time.monotonic() - started, 2)}


# ---- run ---------------------------------------------------------------------------------------


def sse_reader(app: str, request_id: str, events: list, done: threading.Event) -> None:
    """Reads the request's progress stream (Tensorlake's route) raw, next to the client's own wait."""
    url = os.environ["TENSORLAKE_API_URL"].rstrip("/")
    ns = os.environ["INDEXIFY_NAMESPACE"]
    req = urllib.request.Request(
        f"{url}/v1/namespaces/{ns}/applications/{app}/requests/{request_id}/progress",
        headers={"Authorization": f"Bearer {os.environ['TENSORLAKE_API_KEY']}", "Accept": "text/event-stream"},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
            event, data = None, []
            for raw in res:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and (event or data):
                    text = "\n".join(data)
                    try:
                        parsed = json.loads(text)
                    except ValueError:
                        parsed = text
                    kind = event or (next(iter(parsed)) if isinstance(parsed, dict) and len(parsed) == 1 else None)
                    events.append({"event": event, "kind": kind, "data": parsed})
                    event, data = None, []
                    if kind == "RequestFinished":
                        break
    except Exception as e:  # noqa: BLE001 - reported to the test
        events.append({"event": None, "kind": "reader-error", "data": f"{type(e).__name__}: {e}"})
    finally:
        done.set()


def local_mode() -> bool:
    """TL_DRIVER_MODE=local runs the cases with run_local_application of whichever SDK is imported
    (Trellis' in the Python suite), so one case table is checked locally and on the cluster."""
    return os.environ.get("TL_DRIVER_MODE") == "local"


def run(app: Any, args: list, kwargs: dict, watch_progress: bool = False) -> dict:
    from tensorlake.applications import run_local_application, run_remote_application

    name = app if isinstance(app, str) else app._function_config.function_name
    if local_mode():
        watch_progress = False
        request = bounded("run_local_application", lambda: run_local_application(app, *args, **kwargs))
    else:
        request = bounded("run_remote_application", lambda: run_remote_application(app, *args, **kwargs))
    result: dict = {"request_id": request.id}
    events: list = []
    done = threading.Event()
    if watch_progress:
        threading.Thread(target=sse_reader, args=(name, request.id, events, done), daemon=True).start()
    try:
        output = bounded("output", request.output)
    except StageError as e:
        result.update(ok=False, stage=e.stage, error=error_of(e.cause))
    else:
        result.update(ok=True, output=jsonable(output), output_type=type(output).__name__)
    if watch_progress:
        done.wait(10)
        result["sse"] = events
    return result


# What each case must give, wherever it runs (the end-to-end test asserts the same values).
EXPECTED: dict = {
    "pydantic": {"output": {"__type__": "Receipt", "value": {"customer": "ada", "skus": ["apple", "pear"], "total": 8.5}}},
    "file": {"output": {"__type__": "File", "content_type": "text/markdown", "content": "HELLO TRELLIS! (text/plain)"}},
    "failing": {"error": ("RequestFailed", "function_error")},
    "request-error": {"error": ("RequestError", "n must be >= 0, got -5")},
    "progress": {"output": "3 steps done"},
}


def case(name: str) -> dict:
    from tensorlake.applications import File

    features = import_file(FEATURES)
    if name == "pydantic":
        order = features.Order(
            customer="ada",
            items=[features.LineItem(sku="apple", quantity=2, unit_price=1.5), features.LineItem(sku="pear", quantity=3, unit_price=2.0)],
        )
        return run(features.receipt, [order], {"discount": 0.5})
    if name == "file":
        return run(features.shout, [File(content=b"hello trellis", content_type="text/plain"), "!"], {})
    if name == "failing":
        return run(features.fails, [1], {})
    if name == "request-error":
        return run(features.strict, [-5], {})
    if name == "progress":
        return run(features.progress_steps, [3], {}, watch_progress=True)
    raise SystemExit(f"unknown case {name}")


def delete(app: str) -> dict:
    from tensorlake.applications.remote.api_client import APIClient

    with APIClient() as client:
        bounded("delete_application", lambda: client.delete_application(app))
    return {"ok": True}


def main(argv: list) -> None:
    command = argv[1] if len(argv) > 1 else ""
    try:
        if command == "deploy":
            result = deploy(argv[2], argv[3])
        elif command == "run":
            result = run(argv[2], json.loads(argv[3]), {})
        elif command == "case":
            result = case(argv[2])
        elif command == "delete":
            result = delete(argv[2])
        else:
            raise SystemExit(__doc__)
    except StageError as e:
        result = {"ok": False, "stage": e.stage, "error": error_of(e.cause)}
    emit(result)


if __name__ == "__main__":
    main(sys.argv)
