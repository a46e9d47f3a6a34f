"""The artifacts of the blessed-model workflow, declared once and imported everywhere."""

import nbripple as nr

blessed_model = nr.Artifact(
    "blessed_model",
    partition_keys=["blessed"],
    kind="value",
    description="A linear model of y ~ x; blessed=true marks the one production uses.",
)

prediction = nr.Artifact(
    "prediction",
    kind="table",
    description="Predictions made by ops.ipynb with the latest blessed model.",
)
