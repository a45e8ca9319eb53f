"""`tensorlake.applications.function.introspect`: where a function or class is defined."""

from trellis.validation import (  # noqa: F401
    ClassDetails,
    FunctionDetails,
    get_class_details,
    get_function_details,
)
