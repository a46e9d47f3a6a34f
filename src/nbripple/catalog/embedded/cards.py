"""Cards: the Markdown of a version, revised without changing the version's data."""

from __future__ import annotations

from ...model import CardRevision
from .connection import CatalogConnection
from .rows import aware, utcnow


class CardTables(CatalogConnection):
    """Mixed into :class:`EmbeddedCatalog`: the ``cards`` table (and the current card
    copied onto ``versions`` and ``heads`` for reading and search)."""

    def add_card(self, name: str, version: int, card_type: str, markdown: str) -> CardRevision:
        """Add the next revision of the card of ``name@version``, which becomes its
        current card (older revisions are kept). Returns the new revision."""
        now = utcnow()
        with self.transaction() as con:
            row = con.execute(
                "SELECT coalesce(max(revision), 0) + 1 FROM cards "
                "WHERE artifact = ? AND version = ?",
                [name, version],
            ).fetchone()
            revision = int(row[0]) if row else 1
            con.execute("INSERT INTO cards VALUES (?, ?, ?, ?, ?, ?)",
                        [name, version, revision, card_type, markdown, now])
            con.execute(
                "UPDATE versions SET card = ?, card_type = ?, card_revision = ? "
                "WHERE artifact = ? AND version = ?",
                [markdown, card_type, revision, name, version],
            )
            con.execute(
                "UPDATE heads SET card = ?, card_revision = ? WHERE artifact = ? AND version = ?",
                [markdown, revision, name, version],
            )
        return CardRevision(name, version, revision, card_type, markdown, aware(now) or now)

    def card_history(self, name: str, version: int) -> list[CardRevision]:
        """Every revision of the card of ``name@version``, oldest first."""
        with self.connection() as con:
            found = con.execute(
                "SELECT artifact, version, revision, card_type, markdown, created_at FROM cards "
                "WHERE artifact = ? AND version = ? ORDER BY revision",
                [name, version],
            ).fetchall()
        return [
            CardRevision(r[0], r[1], r[2], r[3], r[4], aware(r[5]) or r[5]) for r in found
        ]
