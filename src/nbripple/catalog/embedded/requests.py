"""Idempotent writes: the answer to a request, remembered by the client's key in the
same transaction as the write it made (table ``requests``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from .connection import CatalogConnection
from .rows import utcnow


class RequestTables(CatalogConnection):
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
