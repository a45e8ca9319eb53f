"""The local runner: a request's whole call graph in this process."""

from .runner import LocalRequest, LocalRunner, run_local

__all__ = ["LocalRequest", "LocalRunner", "run_local"]
