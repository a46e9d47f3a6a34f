"""A damaged catalog, a full disk and a read-only home end in clear nbripple errors.

Real files, real file systems: the catalog is truncated, overwritten with garbage or
given a corrupt write-ahead log; the home sits on a small tmpfs that is filled up or
remounted read-only. (Tests run as root, which ignores permissions, so read-only and
full disks are real mounts; without the right to mount, a full disk is a file-size
limit, RLIMIT_FSIZE, in a subprocess, and a read-only home a chmod.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.cli import main
from nbripple.errors import CatalogDamaged, CatalogReadOnly, DiskFull


def cli(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, list(args))


def one_line_error(result: Result, *words: str) -> str:
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "bug in nbripple" not in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def commit_some(home: Path, n: int = 3) -> None:
    art = nr.Artifact("cfg")
    for i in range(n):
        art.create_from({"i": i})
    EmbeddedCatalog.close_all()


def can_mount() -> bool:
    return os.geteuid() == 0 and subprocess.run(
        ["mount", "--version"], capture_output=True).returncode == 0


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        EmbeddedCatalog.close_all()
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_truncated_catalog_is_reported_as_damaged(home: Path) -> None:
    commit_some(home)
    catalog = home / "catalog.duckdb"
    os.truncate(catalog, catalog.stat().st_size // 2)
    with pytest.raises(CatalogDamaged, match=r"damaged.*nbripple backup.*nbripple doctor"):
        nr.Workspace(home).versions("cfg")
    one_line_error(cli("ls"), "damaged", "nbripple doctor")


def test_a_garbage_catalog_is_reported_as_damaged(home: Path) -> None:
    commit_some(home)
    (home / "catalog.duckdb").write_bytes(os.urandom(300_000))
    with pytest.raises(CatalogDamaged, match="not a valid DuckDB database"):
        nr.Workspace(home).versions("cfg")
    one_line_error(cli("versions", "cfg"), "damaged")


def test_a_corrupt_write_ahead_log_is_reported_as_damaged(home: Path) -> None:
    commit_some(home)
    catalog = home / "catalog.duckdb"
    con = duckdb.connect(str(catalog))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("CREATE TABLE scratch (x INTEGER)")
    con.execute("INSERT INTO scratch VALUES (1), (2)")
    con.close()
    wal = catalog.with_name("catalog.duckdb.wal")
    data = bytearray(wal.read_bytes())
    for i in range(20, len(data)):
        data[i] ^= 0xFF
    wal.write_bytes(bytes(data))
    with pytest.raises(CatalogDamaged, match="WAL"):
        nr.Workspace(home).versions("cfg")
    one_line_error(cli("ls"), "damaged")


def test_a_full_disk_is_reported_and_loses_nothing_committed(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    if not can_mount():
        _full_disk_by_file_size_limit(tmp_path)
        return
    with tmpfs(tmp_path / "disk", "24m") as disk:
        home = nr.init_home(disk)
        monkeypatch.setenv("NBRIPPLE_HOME", str(home))
        nr.use(home)
        commit_some(home)
        filler = disk / "filler"
        for chunk in (65536, 4096, 1):
            with filler.open("ab", buffering=0) as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
        with pytest.raises(DiskFull, match=r"full.*earlier commits are intact"):
            nr.Artifact("cfg").create_from({"small": "x" * 100})  # inline: catalog only
        card = tmp_path / "card.md"
        card.write_text("# card\n" * 20_000, encoding="utf-8")
        one_line_error(cli("card", "cfg@1", "--set", str(card)), "full")
        filler.unlink()
        EmbeddedCatalog.close_all()
        assert [v.version for v in nr.Workspace(home).versions("cfg")] == [3, 2, 1]
        nr.Artifact("cfg").create_from({"after": True})  # works again once there is room
        assert nr.Workspace(home).versions("cfg")[0].version == 4


def _full_disk_by_file_size_limit(tmp_path: Path) -> None:
    home = nr.init_home(tmp_path)
    script = (
        "import os, resource, signal, nbripple as nr\n"
        "from nbripple.errors import DiskFull\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"nr.use({str(home)!r}); v = nr.Artifact('cfg').create_from({{'i': 0}})\n"
        "nr.current().release()\n"
        f"limit = os.path.getsize({str(home / 'catalog.duckdb')!r}) + 4096\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
        "try:\n"
        "    nr.current().set_card(v, '# card\\n' * 200_000)\n"
        "except DiskFull as exc:\n"
        "    print('DiskFull', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.startswith("DiskFull"), (out.stdout, out.stderr)


def test_a_read_only_home_reads_and_refuses_writes_clearly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = tmp_path / "card.md"
    card.write_text("# card\n", encoding="utf-8")
    if not can_mount():
        home = nr.init_home(tmp_path / "h")
        monkeypatch.setenv("NBRIPPLE_HOME", str(home))
        nr.use(home)
        commit_some(home)
        home.chmod(0o555)
        (home / "catalog.duckdb").chmod(0o444)
        try:
            one_line_error(cli("card", "cfg@1", "--set", str(card)), "cannot be written")
        finally:
            home.chmod(0o755)
        return
    with tmpfs(tmp_path / "disk", "24m") as disk:
        home = nr.init_home(disk)
        monkeypatch.setenv("NBRIPPLE_HOME", str(home))
        nr.use(home)
        commit_some(home)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        # reads work: nobody can write a read-only mount, so no lock is needed
        assert [v.version for v in nr.Workspace(home).versions("cfg")] == [3, 2, 1]
        listing = cli("ls", "--json")
        assert listing.exit_code == 0 and "cfg" in listing.stdout, listing.output
        assert nr.Workspace(home).get("cfg@2", record=False).inline_value == '{"i": 1}'
        # writes are one clear error
        with pytest.raises(CatalogReadOnly, match=r"cannot be written.*nbripple backup"):
            nr.Workspace(home).set_card("cfg@1", "# new card")
        one_line_error(cli("card", "cfg@1", "--set", str(card)), "cannot be written",
                       "nbripple backup")
        EmbeddedCatalog.close_all()
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        ws = nr.Workspace(home)
        assert [v.version for v in ws.versions("cfg")] == [3, 2, 1]
        assert ws.set_card("cfg@1", "# now it can").revision == 1
