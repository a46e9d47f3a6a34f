"""Idempotent writes: the answer to a request, remembered by the client's key in the
same transaction as the write it made (table ``requests``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from ...model import ArtifactVersion, NewVersion
from .rows import utcnow
from .versions import VersionTables


class RequestTables(VersionTables):
    """Mixed into :class:`EmbeddedCatalog`: the ``requests`` table."""

    def idempotent(self, key: str, method: str, run: Callable[[], str]) -> str:
        """``run()``'s answer, run at most once per ``key``: in one transaction, the
        answer remembered for ``key``, else ``run()`` (its writes joining this
        transaction) and its answer recorded. ValueError if ``key`` was used for
        another method."""
        with self.transaction() as con:
            row = con.execute("SELECT method, result FROM requests WHERE key = ?",
                              [key]).fetchone()
            if row is not None:
                if row[0] != method:
                    raise ValueError(f"idempotency key {key!r} was used for {row[0]}, "
                                     f"not {method}: send a new key for each request")
                return str(row[1])
            result = run()
            con.execute("INSERT INTO requests (key, method, result, created_at) "
                        "VALUES (?, ?, ?, ?)", [key, method, result, utcnow()])
        return result

    def forget_requests(self, before: datetime) -> int:
        """Forget the answers remembered before ``before`` (naive UTC or aware);
        returns how many. A client retries for seconds, not days."""
        cutoff = before if before.tzinfo is None else \
            before.astimezone(UTC).replace(tzinfo=None)
        with self.connection() as con:
            row = con.execute("DELETE FROM requests WHERE created_at < ? RETURNING key",
                              [cutoff]).fetchall()
        return len(row)

    def idempotent_commits(
        self, calls: list[tuple[str, str | None, list[NewVersion]]],
        answer: Callable[[list[ArtifactVersion]], str], *, lookup: bool = True,
    ) -> list[tuple[str, list[ArtifactVersion] | None]]:
        """Several keyed ``commit(execution_id, new)`` calls in one transaction (a
        group commit): the ones whose key is remembered are not run again. Returns,
        per call, its answer (``answer(versions)``) and the versions it committed now
        (None for a call answered from memory). What is remembered of a commit is the
        numbers of its versions, which never change: a replay reads them back.
        Without ``lookup`` (every key is new: no call was ever sent before), nothing is
        looked up; a key that was remembered after all fails the transaction."""
        keys = list(dict.fromkeys(key for key, _, _ in calls))
        with self.transaction() as con:
            known: dict[str, str] = {}
            if keys and lookup:
                marks = ", ".join("?" * len(keys))
                for key, method, result in con.execute(
                        f"SELECT key, method, result FROM requests WHERE key IN ({marks})",
                        keys).fetchall():
                    if method != "commit":
                        raise ValueError(f"idempotency key {key!r} was used for {method}, "
                                         "not commit: send a new key for each request")
                    known[key] = answer(self.get_versions(
                        [(name, int(number)) for name, number in json.loads(result)]))
            todo: dict[str, tuple[str | None, list[NewVersion]]] = {}
            for key, execution_id, new in calls:
                if key not in known and key not in todo:
                    todo[key] = (execution_id, new)
            committed = dict(zip(todo, self.commit_many(list(todo.values())), strict=True))
            now = utcnow()
            if committed:
                rows = ", ".join(["(?, 'commit', ?, ?)"] * len(committed))
                con.execute(f"INSERT INTO requests (key, method, result, created_at) "
                            f"VALUES {rows}",
                            [v for key, versions in committed.items() for v in (
                                key, json.dumps([[x.name, x.version] for x in versions]),
                                now)])
            fresh = {key: answer(versions) for key, versions in committed.items()}
        out: list[tuple[str, list[ArtifactVersion] | None]] = []
        for key, _, _ in calls:
            if key in committed:
                out.append((fresh[key], committed.pop(key)))
            else:
                out.append((known.get(key) or fresh[key], None))
        return out
