"""HTML rendering: the Jinja2 environment, safe markdown, and small formatting helpers for templates.

Why this is careful: every string in a study record comes from outside (sponsors type it into the
registry). Templates autoescape everything; the only HTML built from record text is markdown, which is
rendered with raw HTML disabled and then passed through an allow-list sanitiser (nh3), so neither a
``<script>`` nor a ``javascript:`` link can reach a browser, whatever a record contains.
"""

from __future__ import annotations

import datetime as _dt
import functools
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
import nh3
import orjson
from markdown_it import MarkdownIt
from markupsafe import Markup

#: Tags markdown may produce that we let through; attributes are limited to links (and table alignment).
ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h3", "h4", "h5",
    "h6", "table", "thead", "tbody", "tr", "th", "td", "sup", "sub", "del", "s",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"style"}, "td": {"style"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
#: Longest markdown text rendered in one call; longer text is cut (registry fields are far shorter).
MAX_MARKDOWN_CHARS = 100_000


@functools.lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # "commonmark" with html disabled: raw HTML in records is shown as text, never interpreted
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def _clean(html: str) -> str:
    return nh3.clean(html, tags=set(ALLOWED_TAGS), attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
                     url_schemes=set(URL_SCHEMES), link_rel="nofollow noopener noreferrer")


def markdown_html(text: Any) -> Markup:
    """Record markdown -> sanitised HTML, safe to insert into a page."""
    if text is None:
        return Markup("")
    src = str(text)[:MAX_MARKDOWN_CHARS]
    # headings inside a record must not outrank the page's own headings
    html = _markdown().render(src).replace("<h1>", "<h3>").replace("</h1>", "</h3>")
    html = html.replace("<h2>", "<h4>").replace("</h2>", "</h4>")
    return Markup(_clean(html))


def markdown_inline(text: Any) -> Markup:
    """One line of record markdown (a criterion, an arm description) -> sanitised inline HTML."""
    if text is None:
        return Markup("")
    return Markup(_clean(_markdown().renderInline(str(text)[:MAX_MARKDOWN_CHARS])))


def json_script(value: Any) -> Markup:
    """Data for page scripts, for a ``<script type="application/json">`` block: ``<``, ``>`` and ``&`` are
    escaped as unicode escapes so record text can never close the script element."""
    text = orjson.dumps(value).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def number(value: Any) -> str:
    """1234567 -> "1,234,567" (counts on pages)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


def distance(km: Any) -> str:
    """A distance for people in both unit systems: "12.3 mi (19.8 km)"."""
    if km is None:
        return ""
    try:
        km = float(km)
    except (TypeError, ValueError):
        return ""
    mi = km / 1.609344
    return f"{mi:,.1f} mi ({km:,.1f} km)"


def url_with(base: str, params: dict[str, Any] | list[tuple[str, Any]]) -> str:
    """``base?query`` with empty values left out (links that toggle filters)."""
    items = params.items() if isinstance(params, dict) else params
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, str(v)) for v in values if v not in (None, "", False))
    return f"{base}?{urlencode(pairs)}" if pairs else base


def make_templates(template_dir: str | None = None) -> jinja2.Environment:
    """A Jinja2 environment over the package templates, autoescaping everything."""
    directory = template_dir or str(resources.files("trialfinder.web") / "templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from trialfinder.eligibility.wording import for_patient
    from trialfinder.model.labels import label, status_badge

    env.filters.update(
        markdown=markdown_html,
        markdown_inline=markdown_inline,
        number=number,
        distance=distance,
        json_script=json_script,
        label=lambda value, enum_type: label(enum_type, value),
        status_badge=status_badge,
        for_patient=for_patient,
    )
    env.globals.update(url_with=url_with, now_year=_dt.date.today().year)
    return env
