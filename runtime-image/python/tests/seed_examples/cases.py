"""The seed's examples (the ex*.py files, verbatim from seed/async-functions.md) with an
input and the value the seed's comments imply. Shared with the cluster tests: each case
can be run as `verbatim code + print(run_local_application(app, *args).output())`.

ex08 is verbatim too: its `my_app_background_task` uses `asyncio` without importing it,
so as written that application fails with NameError (request reason `function_error`);
`FIXED_IMPORTS` lists the one line a user would add, with which it returns the value.
"""

import json
import pathlib

HERE = pathlib.Path(__file__).parent

# (file, application, args, expected output)
CASES = [
    ("ex01_async_await.py", "greet", ["world"], "Hello, WORLD!"),
    ("ex02_create_task.py", "my_app", [21], 42),
    ("ex03_gather.py", "greet", ["Ada"], "Hello, ADA! Why did Ada cross the road? To get to the other side!"),
    ("ex04_map_reduce.py", "process_numbers", [[1, 2, 3, 4]], 20),
    ("ex05_coroutines_as_inputs.py", "my_app", [3], 14),
    ("ex06_tail_call_coroutine.py", "my_app", [5], 10),
    ("ex07_tail_call_future.py", "my_app", [5], 10),
    ("ex08_sync_from_async.py", "my_app", [4], 8),
    ("ex08_sync_from_async.py", "my_app_tail_call", [4], 8),
    ("ex09_async_from_sync.py", "my_app", [5], 15),
]

# Verbatim, this application fails: the seed forgot `import asyncio`.
FAILING_VERBATIM = [("ex08_sync_from_async.py", "my_app_background_task", [4], "function_error")]
FIXED_IMPORTS = {"ex08_sync_from_async.py": "import asyncio\n"}
FIXED_CASES = [("ex08_sync_from_async.py", "my_app_background_task", [4], 8)]


def source(file: str, prefix: str = "") -> str:
    return prefix + (HERE / file).read_text()


def footer(app: str, args: list) -> str:
    rendered = ", ".join(json.dumps(a) for a in args)
    return (
        "\nfrom tensorlake.applications import run_local_application\n"
        f"print(run_local_application({app}, {rendered}).output())\n"
    )


def script(file: str, app: str, args: list, prefix: str = "") -> str:
    """The example file with the footer that prints its output."""
    return source(file, prefix) + footer(app, args)
