"""Reading the generated pages in tests: text, links, element ids and SVG titles, parsed with
the standard library's HTML parser (the tests never look at the templates)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

BLOCKS = {"p", "div", "dt", "dd", "td", "th", "tr", "li", "h1", "h2", "h3", "section", "table", "ul", "ol", "dl",
          "pre", "header", "footer", "main", "title", "br", "text", "g"}


class Page(HTMLParser):
    """One page's visible text, links (`a href`), ids, script/stylesheet references and the
    text of each `<section id=...>`."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.resources: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.titles: list[str] = []  # SVG <title> texts
        self._open: list[str] = []
        self._skip = 0
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in BLOCKS or a.get("class") == "line":
            self._gap()
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href") is not None:
            self.links.append(a["href"])
        if tag == "script":
            self._skip += 1
            if a.get("src"):
                self.resources.append(a["src"])
        if tag == "link" and a.get("href"):
            self.resources.append(a["href"])
        if tag == "section" and "id" in a:
            self._open.append(a["id"])
            self.sections.setdefault(a["id"], [])
        if tag == "title" and self._in_svg():
            self._in_title = True
        if tag == "svg":
            self._open.append("svg")

    def _in_svg(self) -> bool:
        return "svg" in self._open

    def _gap(self) -> None:
        self.parts.append(" ")
        for sec in self._open:
            if sec != "svg":
                self.sections[sec].append(" ")

    def handle_endtag(self, tag):
        if tag in BLOCKS:
            self._gap()
        if tag == "script":
            self._skip -= 1
        if tag == "section" and self._open:
            while self._open and self._open.pop() == "svg":
                pass
        if tag == "svg" and "svg" in self._open:
            self._open.reverse()
            self._open.remove("svg")
            self._open.reverse()
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_title:
            self.titles.append(data)
        self.parts.append(data)
        for sec in self._open:
            if sec != "svg":
                self.sections[sec].append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())

    def section(self, name: str) -> str:
        return " ".join("".join(self.sections.get(name, [])).split())


def read(site: Path, rel: str) -> Page:
    return Page((site / rel).read_text(encoding="utf-8"))
