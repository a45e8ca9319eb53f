"""Each seed example, verbatim, with the value its comments imply."""

import importlib.util
import os
import subprocess
import sys

import pytest

from seed_examples import cases
from tensorlake.applications import RequestFailed, run_local_application

PYTHON_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(file: str, prefix: str = ""):
    name = f"seed_{os.path.splitext(file)[0]}_{abs(hash(prefix))}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(cases.source(file, prefix), str(cases.HERE / file), "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("file,app,args,expected", cases.CASES, ids=lambda v: str(v))
def test_seed_example_in_process(file, app, args, expected):
    module = _load(file)
    assert run_local_application(getattr(module, app), *args).output() == expected


def _run_script(code: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "example.py"
    path.write_text(code)
    env = dict(os.environ, PYTHONPATH=PYTHON_ROOT)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("file,app,args,expected", cases.CASES, ids=lambda v: str(v))
def test_seed_example_as_script_prints_value(file, app, args, expected, tmp_path):
    result = _run_script(cases.script(file, app, args), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


@pytest.mark.parametrize("file,app,args,reason", cases.FAILING_VERBATIM)
def test_seed_example_missing_import_fails_the_request(file, app, args, reason, capsys):
    module = _load(file)
    with pytest.raises(RequestFailed) as info:
        run_local_application(getattr(module, app), *args).output()
    assert str(info.value) == reason
    assert "NameError" in capsys.readouterr().err


@pytest.mark.parametrize("file,app,args,expected", cases.FIXED_CASES)
def test_seed_example_with_its_missing_import(file, app, args, expected, tmp_path):
    result = _run_script(cases.script(file, app, args, cases.FIXED_IMPORTS[file]), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)
