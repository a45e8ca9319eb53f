"""The Tensorlake-style apps of the end-to-end test (test/e2e/tensorlake), run locally with this
SDK through the same driver and case table that runs them on the cluster with Tensorlake's client."""

import importlib.util
import os
import sys

import pytest

import pydantic  # noqa: F401,E402

DRIVER = os.path.join(os.path.dirname(__file__), "..", "..", "..", "test", "e2e", "tensorlake", "driver.py")


@pytest.fixture(scope="module")
def driver():
    os.environ["TL_DRIVER_MODE"] = "local"
    spec = importlib.util.spec_from_file_location("tl_driver", os.path.abspath(DRIVER))
    module = importlib.util.module_from_spec(spec)
    sys.modules["tl_driver"] = module
    spec.loader.exec_module(module)
    yield module
    os.environ.pop("TL_DRIVER_MODE", None)


@pytest.mark.parametrize("name", ["pydantic", "file", "failing", "request-error", "progress"])
def test_case_gives_what_the_cluster_gives(driver, name):
    expected = driver.EXPECTED[name]
    result = driver.case(name)
    if "output" in expected:
        assert result["ok"], result
        assert result["output"] == expected["output"]
    else:
        assert not result["ok"], result
        assert result["stage"] == "output"
        assert (result["error"]["type"], result["error"]["message"]) == expected["error"]
