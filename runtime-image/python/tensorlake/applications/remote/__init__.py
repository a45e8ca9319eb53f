"""`tensorlake.applications.remote`: Tensorlake's remote-mode modules (deploy) over `trellis`."""
