"""nbripple is typed for its users: ``mypy --strict`` on a user's script sees the public
names (``nr.Artifact``, ``nr.run``, ...) with their types, through ``py.typed`` and a
static ``__all__``, and reports the user's own mistakes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nbripple

SCRIPT = Path(__file__).parent / "typing_user_script.py"
PACKAGE = Path(nbripple.__file__).parent


def expectations(kind: str) -> dict[int, str]:
    """``{line: text}`` of the ``# kind: text`` comments of the script."""
    found = {}
    for number, line in enumerate(SCRIPT.read_text().splitlines(), start=1):
        mark = re.search(rf"\S  # {kind}: (.+)$", line)
        if mark:
            found[number] = mark.group(1).strip()
    return found


def test_the_package_is_marked_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """mypy --strict on the script as a user runs it: nbripple found on the path of the
    interpreter (as an installed package, so py.typed decides), no project config."""
    work = tmp_path_factory.mktemp("typing")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PACKAGE.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("MYPYPATH", None)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-error-codes",
         "--python-executable", sys.executable, "--cache-dir", str(work / "cache"),
         "--config-file", os.devnull, str(SCRIPT)],
        cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert "error: " in done.stdout or done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def messages(output: list[str], severity: str) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for line in output:
        match = re.match(rf"^.*typing_user_script\.py:(\d+): {severity}: (.*)$", line)
        if match:
            found.setdefault(int(match.group(1)), []).append(match.group(2))
    return found


def test_a_strict_user_script_sees_every_public_name_and_its_type(
        mypy_output: list[str]) -> None:
    notes = messages(mypy_output, "note")
    for line, pattern in expectations("reveal").items():
        revealed = [re.match(r'Revealed type is "(.*)"$', n) for n in notes.get(line, [])]
        types = [m.group(1) for m in revealed if m]
        assert types, f"line {line}: no reveal_type note in:\n" + "\n".join(mypy_output)
        assert re.match(pattern, types[0]), f"line {line}: revealed {types[0]!r}, " \
                                            f"expected {pattern!r}"


def test_mypy_reports_the_users_mistakes_and_nothing_else(mypy_output: list[str]) -> None:
    expected = {line: code for line, code in expectations("error").items()}
    errors = messages(mypy_output, "error")
    reported = {line: [re.search(r"\[([\w-]+)\]$", e) for e in found]
                for line, found in errors.items()}
    codes = {line: sorted(m.group(1) for m in found if m) for line, found in reported.items()}
    assert codes == {line: [code] for line, code in expected.items()}, "\n".join(mypy_output)
