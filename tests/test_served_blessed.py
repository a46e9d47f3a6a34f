"""The blessed-model example end to end in the served mode: `nbripple serve` (with its
watcher) owns the home, and every step is a plain `nbripple` command in a process of
its own, which finds the server through server.json — no setting names it.

As notebooks/demo.py does: register and activate the example's plans, run
product_development.ipynb un-blessed then blessed; the server's watcher runs ops.ipynb
once, on the blessed model, and the lineage of its prediction reaches back to the
model and the run that made it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from serving import child_env, start_server
from waiting import wait_for

EXAMPLE = Path(__file__).resolve().parents[1] / "notebooks" / "blessed_model"
DEADLINE_S = 240.0


def nbripple(home: Path, cwd: Path, *args: str) -> Any:
    """`nbripple ARGS --json` in its own process; its parsed output."""
    done = subprocess.run([sys.executable, "-c", "from nbripple.cli import main; main()",
                           *args, "--json"], capture_output=True, text=True, cwd=cwd,
                          env=child_env(home), timeout=DEADLINE_S, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_the_blessed_model_example_through_nbripple_serve(tmp_path: Path) -> None:
    project = tmp_path / "blessed_model"
    shutil.copytree(EXAMPLE, project)
    home = nr.init_home(tmp_path)
    EmbeddedCatalog.close_all()
    server = start_server(home)  # with its watcher
    try:
        registered = nbripple(home, project, "register", "plans.py")
        assert [p["name"] for p in registered] == ["trigger_ops"]
        assert nbripple(home, project, "activate", "trigger_ops")["state"] == "active"

        first = nbripple(home, project, "run", "product_development.ipynb",
                         "-p", "blessed", "false", "-p", "seed", "0", "--no-progress")
        second = nbripple(home, project, "run", "product_development.ipynb",
                          "-p", "blessed", "true", "-p", "seed", "1", "--no-progress")
        assert first["status"] == second["status"] == "succeeded", (first, second)
        assert first["outputs"] == ["blessed_model@1"]
        assert second["outputs"] == ["blessed_model@2"]

        with server.client() as client:
            def ops_runs() -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = client.get("executions").json()
                return [r for r in rows if (r["trigger"] or {}).get("plan") == "trigger_ops"]

            def ended() -> list[dict[str, Any]]:
                runs = ops_runs()
                return runs if runs and all(
                    r["status"] not in ("queued", "running") for r in runs) else []

            runs = wait_for(ended, DEADLINE_S, "the triggered ops run to end", interval=0.2)
            time.sleep(1.0)  # a second firing would be there by now
            assert len(runs) == 1 and len(ops_runs()) == 1, ops_runs()
            ops = client.get(f"executions/{runs[0]['id']}").json()
            assert ops["status"] == "succeeded", ops
            assert ops["trigger"]["artifact"] == "blessed_model"
            assert ops["trigger"]["version"] == 2
            assert ops["inputs"] == [{"ref": "blessed_model@2", "parameter": "model"}]
            assert ops["outputs"] == ["prediction@1"]

            # the CLI sees what the server sees, through the server
            listed = nbripple(home, project, "executions")
            assert [e["id"] for e in listed if (e["trigger"] or {}).get(
                "plan") == "trigger_ops"] == [ops["id"]]

            lineage = client.get("lineage", params={"ref": "prediction@1",
                                                    "direction": "up", "depth": "all"})
            assert lineage.status_code == 200, lineage.text
            elements = lineage.json()["elements"]
            nodes = {n["data"]["id"]: n["data"] for n in elements["nodes"]}
            edges = {(e["data"]["source"], e["data"]["target"], e["data"]["kind"])
                     for e in elements["edges"]}
        model, prediction = "version:blessed_model@2", "version:prediction@1"
        made, used = f"execution:{second['id']}", f"execution:{ops['id']}"
        assert {prediction, model, made, used} <= set(nodes), sorted(nodes)
        assert "version:blessed_model@1" not in nodes  # the un-blessed model is not upstream
        assert f"execution:{first['id']}" not in nodes
        # prediction <- ops run <- blessed model <- the blessed product_development run
        assert (used, prediction, "produced") in edges, edges
        assert (model, used, "consumed") in edges, edges
        assert (model, used, "triggered") in edges, edges  # the plan fired on it
        assert (made, model, "produced") in edges, edges
        assert nodes[prediction]["depth"] == 0 and nodes[made]["depth"] == 3
    finally:
        assert server.stop() == 0
