"""Cards render Markdown to HTML in which nothing can run: every element and attribute
of the output is inspected with an HTML parser, not by looking for substrings."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

import nbripple as nr
from nbripple.cards import Card, as_card, render_html

ACTIVE_TAGS = {"script", "iframe", "object", "embed", "style", "form", "meta", "base", "link",
               "svg", "math", "frame", "frameset", "applet", "template", "noscript"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster",
                  "background", "srcset"}


class Inspector(HTMLParser):
    """Collects every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def inspect(html: str) -> Inspector:
    parser = Inspector()
    parser.feed(html)
    parser.close()
    return parser


def assert_inert(html: str) -> Inspector:
    """Nothing in ``html`` can execute: no active tags, handlers or script URLs."""
    found = inspect(html)
    for tag, attrs in found.tags:
        assert tag not in ACTIVE_TAGS, f"<{tag}> survived in {html!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{name}= survived on <{tag}> in {html!r}"
            assert name != "style", f"style= survived on <{tag}> in {html!r}"
            if name in URL_ATTRIBUTES and value is not None:
                scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""
                assert scheme in ("", "http", "https", "mailto"), \
                    f"{name}={value!r} survived on <{tag}> in {html!r}"
    return found


HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" ONERROR="alert(1)">',
    "[click me](javascript:alert(1))",
    "![pic](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "<javascript:alert(1)>",
    '<div onclick="alert(1)" onmouseover="alert(2)">hover</div>',
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<iframe src=https://evil.example></iframe>",
    "<object data=x.swf></object><embed src=x.swf>",
    "<style>body{display:none}</style>",
    '<p style="background:url(javascript:alert(1))">styled</p>',
    '<form action="javascript:alert(1)"><button formaction="javascript:alert(2)">go</button>'
    "</form>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<details open ontoggle=alert(1)><summary>s</summary>d</details>",
    "<input autofocus onfocus=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<<script>script>alert(1)<</script>/script>",
    "<!-- <script>alert(1)</script> -->",
    "| h |\n|---|\n| <img src=x onerror=alert(1)> |",
]


@pytest.mark.parametrize("markdown", HOSTILE)
def test_nothing_active_survives_render_html(markdown: str) -> None:
    html = render_html(f"# Title\n\nSome text.\n\n{markdown}\n")
    found = assert_inert(html)
    assert ("h1", {}) in found.tags  # the rest of the card still renders
    assert "alert(1)" not in "".join(v or "" for _, a in found.tags for v in a.values())


def test_script_content_is_dropped_not_shown_as_text() -> None:
    found = assert_inert(render_html("before <script>steal()</script> after"))
    assert "steal()" not in "".join(found.text)
    assert "before" in "".join(found.text) and "after" in "".join(found.text)


def test_markdown_tables_render() -> None:
    html = render_html("| model | accuracy |\n|:------|---------:|\n| a | 0.91 |\n| b | 0.87 |\n")
    found = assert_inert(html)
    tags = [tag for tag, _ in found.tags]
    assert tags.count("table") == 1
    assert tags.count("th") == 2 and tags.count("td") == 4
    assert {"thead", "tbody", "tr"} <= set(tags)
    assert [
        t for t in (s.strip() for s in found.text) if t
    ] == ["model", "accuracy", "a", "0.91", "b", "0.87"]


def test_ordinary_markdown_and_safe_links_survive() -> None:
    html = render_html(
        "# Model\n\n**bold** and *italic*, `code`\n\n- one\n- two\n\n"
        "```python\nprint('hi')\n```\n\n[docs](https://example.org/docs) "
        "[mail](mailto:team@example.org) ![chart](https://example.org/c.png)\n\n"
        "<details><summary>More</summary>hidden</details>\n"
    )
    found = assert_inert(html)
    tags = dict(found.tags)
    assert {"h1", "strong", "em", "code", "ul", "li", "pre", "a", "img", "details",
            "summary"} <= {tag for tag, _ in found.tags}
    links = [a for tag, a in found.tags if tag == "a"]
    assert [a["href"] for a in links] == ["https://example.org/docs", "mailto:team@example.org"]
    assert all(a["rel"] == "noopener noreferrer nofollow" for a in links)
    assert tags["img"]["src"] == "https://example.org/c.png"
    assert "print('hi')" in "".join(found.text)


def test_card_objects_and_types() -> None:
    model, data, plain = nr.ModelCard("# M"), nr.DataCard("# D"), as_card("# P")
    assert (model.card_type, data.card_type) == ("model", "data")
    assert plain is not None and plain.card_type == "card"
    assert as_card(None) is None and as_card(model) is model
    assert model.to_html() == "<h1>M</h1>\n"
    assert model._repr_html_() == '<div class="nbripple-card"><h1>M</h1>\n</div>'
    assert data._repr_markdown_() == "# D"
    with pytest.raises(TypeError, match="card must be"):
        as_card(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a string"):
        Card(b"# bytes")  # type: ignore[arg-type]
    assert render_html("") == ""


def test_stored_hostile_card_renders_inert_through_the_api(home: Path) -> None:
    hostile = "\n\n".join(HOSTILE)
    nr.Artifact("evil").create_from(1, nr.ModelCard(hostile))
    html = nr.card_html("evil@1")
    assert_inert(html)
    assert nr.get("evil@1").card == hostile  # stored verbatim; sanitized when shown
    nr.set_card("evil@1", "<img src=x onerror=alert(1)> **fine**")
    assert_inert(nr.card_html("evil@1"))
    assert "<strong>fine</strong>" in nr.card_html("evil@1")
