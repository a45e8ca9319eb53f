"""`python -m trellis.worker`: the Python half of a function pod (see PROTOCOL.md)."""
