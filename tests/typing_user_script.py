"""A user's script, never run: tests/test_typing.py type-checks it with ``mypy --strict``.

``# reveal: PATTERN`` — mypy must reveal a type matching PATTERN (a regex) on that line;
``# error: CODE`` — mypy must report exactly that error there (so the check can fail).
Any other error fails the test: a user's strict script sees every public name.
"""

from __future__ import annotations

from typing import reveal_type

import nbripple as nr

model = nr.Artifact("blessed_model", partition_keys=["blessed"])
reveal_type(model)  # reveal: ^nbripple\.[\w.]*Artifact$
blessed = nr.query("blessed_model", blessed="true")
reveal_type(blessed)  # reveal: ^nbripple\.[\w.]*Query$
reveal_type(model.query(blessed="true"))  # reveal: ^nbripple\.[\w.]*Query$

version = nr.get("blessed_model@1")
reveal_type(version)  # reveal: ^nbripple\.[\w.]*ArtifactVersion$
reveal_type(version.version)  # reveal: ^int$
weights = nr.load(blessed)
reveal_type(weights)  # reveal: ^Any$
hits = nr.search("model", partitions={"blessed": "true"}, limit=5)
reveal_type(hits)  # reveal: ^(nbripple\.[\w.]*SearchResults|list\[.*ArtifactVersion\])$
for hit in hits:
    reveal_type(hit)  # reveal: ^nbripple\.[\w.]*ArtifactVersion$

plan = nr.LaunchPlan(
    "predict", notebook="predict.ipynb",
    trigger=nr.OnArtifact(model.query(blessed="true"), inputs={"model": model}),
)
reveal_type(plan)  # reveal: ^nbripple\.[\w.]*LaunchPlan$
run = nr.run("predict.ipynb", parameters={"model": "blessed_model@1"})
reveal_type(run)  # reveal: ^nbripple\.[\w.]*Execution$
reveal_type(run.status)  # reveal: ^str$
graph = nr.lineage("prediction@1", depth=None, direction="up")
reveal_type(graph)  # reveal: ^nbripple\.[\w.]*LineageGraph$

# Mistakes a type checker must catch in a user's code:
name: int = version.name  # error: assignment
nr.LaunchPlan("nightly", notebook="nightly.ipynb", retries="3")  # error: arg-type
print(nr.get("blessed_model@1").no_such_attribute)  # error: attr-defined
