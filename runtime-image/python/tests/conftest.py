import pathlib
import sys

HERE = pathlib.Path(__file__).parent
# Lets tests import `seed_examples` and `apps`, and lets the worker import apps by name.
sys.path.insert(0, str(HERE))
