"""`tensorlake.applications.function`: the package of Tensorlake's `function.introspect` module.

`tensorlake.applications` loads this package before it binds the `@function` decorator, so the
public name `tensorlake.applications.function` stays the decorator.
"""
