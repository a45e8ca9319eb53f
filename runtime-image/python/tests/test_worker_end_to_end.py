"""Whole apps through the real worker process, with the protocol's graph rules applied by a
reference orchestrator (tests/mini_cluster.py): the seed examples, loaded from their files."""

import pytest

from mini_cluster import MiniCluster
from seed_examples import cases
from sidecar import Sidecar
from trellis._core import values


@pytest.fixture(scope="module")
def workers():
    started: dict[str, Sidecar] = {}

    def get(file: str) -> Sidecar:
        if file not in started:
            sc = Sidecar(module=str(cases.HERE / file), concurrency=16)
            sc.hello = sc.handshake()
            started[file] = sc
        return started[file]

    yield get
    for sc in started.values():
        assert sc.close() == 0


@pytest.mark.parametrize("file,app,args,expected", cases.CASES, ids=lambda v: str(v))
def test_seed_example_through_the_worker(workers, file, app, args, expected):
    sc = workers(file)
    root = MiniCluster(sc, request=f"r{abs(hash((file, app))) % 10**8}").run(app, args)
    assert root["phase"] == "Succeeded", root["error"]
    assert values.decode(root["output"], "output") == expected


def test_seed_example_failure_through_the_worker(workers):
    file, app, args, _ = cases.FAILING_VERBATIM[0]
    root = MiniCluster(workers(file), request="rfailing").run(app, args)
    assert root["phase"] == "Failed"
    assert root["error"]["type"] == "NameError" and "asyncio" in root["error"]["message"]


@pytest.fixture(scope="module")
def app_worker():
    sc = Sidecar(module="apps.worker_app", concurrency=16)
    sc.hello = sc.handshake()
    yield sc
    assert sc.close() == 0


def test_tail_chain_through_the_worker(app_worker):
    cluster = MiniCluster(app_worker, request="rchain")
    root = cluster.run("countdown", [150])
    assert root["phase"] == "Succeeded" and root["output"] == {"json": "liftoff"}
    assert len(cluster.calls) == 151
    assert all(len(cid) == len("rchain") + 17 for cid in cluster.calls if cid != "rchain")


def test_retries_through_the_worker(app_worker):
    root = MiniCluster(app_worker, request="rretry").run("uses_flaky", [7])
    assert root["phase"] == "Succeeded" and root["output"] == {"json": [7, 3]}


def test_map_over_a_list_of_pickled_items(app_worker):
    root = MiniCluster(app_worker, request="rpickled").run("map_over_pickled_items", [3])
    assert root["phase"] == "Succeeded" and root["output"] == {"json": [0, 1, 2]}


def test_request_error_through_the_worker(app_worker):
    root = MiniCluster(app_worker, request="rreject").run("reject", [1])
    assert root["phase"] == "Failed" and root["error"]["request_error"] is True
