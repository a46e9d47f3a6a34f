"""A self-triggering loop: each new prime triggers the search for the next one,
until the chain is max_chain_depth runs long. `nbripple register plans.py`."""

import nbripple as nr

largest = nr.Artifact("largest_baillie_wagstaff", kind="value",
                      description="The largest prime found so far (Baillie-PSW tested).")

next_prime = nr.LaunchPlan(
    "next_prime",
    notebook="find_next_prime.ipynb",
    trigger=nr.OnArtifact(largest, inputs={"previous": largest}),
    max_chain_depth=10,
    description="Find the next prime each time a prime is committed.",
)
