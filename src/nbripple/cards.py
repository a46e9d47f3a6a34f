"""Markdown model and data cards, and their safe rendering to HTML.

Cards are rendered with markdown-it-py and then sanitized with nh3 (ammonia): no
``<script>``, no ``on*=`` handlers, no ``javascript:`` URLs survive, wherever a
card is shown (notebook output, widgets, the JupyterLab panel).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_ALLOWED_SCHEMES = {"http", "https", "mailto"}
_EXTRA_TAGS = {"table", "thead", "tbody", "tr", "th", "td", "input", "details", "summary"}


@dataclass(frozen=True)
class Card:
    """A Markdown card attached to an artifact version."""

    markdown: str
    card_type: str = "card"

    def __post_init__(self) -> None:
        if not isinstance(self.markdown, str):
            raise TypeError(f"a card's Markdown must be a string, got {type(self.markdown)}")

    def to_html(self) -> str:
        """The card rendered to sanitized HTML."""
        return render_html(self.markdown)

    def _repr_html_(self) -> str:
        return f'<div class="nbripple-card">{self.to_html()}</div>'

    def _repr_markdown_(self) -> str:
        return self.markdown


class ModelCard(Card):
    """A card that documents a model: ``nr.ModelCard("# Model\\n...")``."""

    def __init__(self, markdown: str) -> None:
        super().__init__(markdown, "model")


class DataCard(Card):
    """A card that documents a data set: ``nr.DataCard("# Data\\n...")``."""

    def __init__(self, markdown: str) -> None:
        super().__init__(markdown, "data")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


def render_html(markdown: str) -> str:
    """Render Markdown to HTML that is safe to insert into a page.

    >>> "script" in render_html("<script>alert(1)</script> **hi**")
    False
    """
    raw = _markdown().render(markdown or "")
    allowed = set(nh3.ALLOWED_TAGS) | _EXTRA_TAGS
    return nh3.clean(
        raw,
        tags=allowed,
        url_schemes=_ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def as_card(card: Card | str | None) -> Card | None:
    """Accept a Card, plain Markdown text, or None."""
    if card is None or isinstance(card, Card):
        return card
    if isinstance(card, str):
        return Card(card)
    raise TypeError(
        f"card must be nr.ModelCard(...), nr.DataCard(...) or Markdown text, got "
        f"{type(card).__name__}"
    )
