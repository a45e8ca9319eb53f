"""Functions for the spilled-values tests (test_spill.py)."""

import hashlib

from tensorlake.applications import File, function


@function()
def make_file(n: int) -> File:
    return File(bytes(i % 251 for i in range(n)), "application/x-test")


@function()
def digest(f: File) -> str:
    return f"{f.content_type}:{len(f.content)}:{hashlib.sha256(f.content).hexdigest()}"


@function()
def passes_file(n: int) -> str:
    return digest(File(bytes(i % 251 for i in range(n)), "application/x-test"))


@function()
def small(n: int) -> int:
    return n + 1
