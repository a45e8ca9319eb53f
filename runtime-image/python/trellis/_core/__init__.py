"""Machinery shared by every runtime (local runner and pod worker). Not public API."""
