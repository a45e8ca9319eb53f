# Per-attempt timeouts on the cluster (timeouts.test.ts): the decorator says 2 s; an Application
# may raise it in its spec (functions[].timeoutSeconds), and the worker must honour the raise.
import time

from tensorlake.applications import application, function


@application()
@function(timeout=2)
def sleeps(seconds: float) -> str:
    time.sleep(seconds)
    return f"slept {seconds:g} s"
