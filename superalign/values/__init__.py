"""Value axes: each value the loop optimises and the evaluation scores, as a plug-in of one shape.

`Axis` (values/base.py) is the shape; `register(name, factory)` adds one; `get(name)` and `names()` read the
registry; `eval.axes` / `loop.axes` in the config enable them. Built in: harmlessness (the loop's original value),
honesty, sycophancy and privacy. `values.suite` evaluates every enabled axis; `values.report` draws the profile.
"""
from superalign.values.base import (Axis, Judge, Metric, axis_metric, check_names, check_verdicts, get,  # noqa: F401
                                    names, register)
from superalign.values import harmlessness, honesty, privacy, sycophancy  # noqa: E402  (the built-in axes)

for _m in (harmlessness, honesty, sycophancy, privacy):
    register(_m.AXIS.name, _m.AXIS)
