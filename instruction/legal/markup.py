"""A minimal, safe markup for the texts an admin writes for the legal pages.

Everything is escaped; the only structure is: a blank line separates two blocks; a block whose
first line starts with ``## `` is a heading (the rest of the block, a paragraph); a block whose
lines all start with ``- `` is a bulleted list; a single line break stays a line break. Nothing
else (no links, no HTML): the text cannot inject markup or scripts.
"""

from __future__ import annotations

from markupsafe import Markup, escape


def _lines(text: str) -> Markup:
    return Markup("<br>\n").join(escape(line) for line in text.split("\n"))


def render(text: str, *, heading_level: int = 2) -> Markup:
    """The text as escaped HTML blocks (``<h2>``, ``<p>``, ``<ul>``)."""
    blocks = [block.strip("\n") for block in text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n")]
    html: list[Markup] = []
    tag = f"h{heading_level}"
    for block in blocks:
        if not block.strip():
            continue
        lines = [line.rstrip() for line in block.split("\n")]
        if lines[0].startswith("## "):
            html.append(Markup(f'<{tag} class="h5 mt-4">') + escape(lines[0][3:].strip()) + Markup(f"</{tag}>"))
            lines = lines[1:]
            if not any(line.strip() for line in lines):
                continue
        if all(line.startswith("- ") for line in lines if line.strip()):
            items = [Markup("<li>") + escape(line[2:].strip()) + Markup("</li>") for line in lines if line.strip()]
            html.append(Markup("<ul>") + Markup("").join(items) + Markup("</ul>"))
        else:
            html.append(Markup("<p>") + _lines("\n".join(lines)) + Markup("</p>"))
    return Markup("\n").join(html)
