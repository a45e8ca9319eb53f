"""`tensorlake.applications.remote.deploy`: Tensorlake's import path of deploy_applications."""

from trellis.deploy import deploy_applications

__all__ = ["deploy_applications"]
