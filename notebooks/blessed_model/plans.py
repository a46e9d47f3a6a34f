"""Run ops.ipynb whenever a blessed model appears: `nbripple register plans.py`."""

from contracts import blessed_model

import nbripple as nr

trigger_ops = nr.LaunchPlan(
    "trigger_ops",
    notebook="ops.ipynb",
    trigger=nr.OnArtifact(
        blessed_model.query(blessed="true"),
        inputs={"model": blessed_model},  # the version that fired the plan
    ),
    description="Predict with every newly blessed model.",
)
