"""The committed docs: every link lands on a file (and an anchor) of the repository, and no text names a path of the
machine that made them. A table rendered with `lab table --for-docs` passes by construction; one copied out of a
run directory does not (its logs and captures are not committed, its header names the run's paths)."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests import CHECKOUT

DOCS = sorted((CHECKOUT / "docs").glob("*.md")) + sorted((CHECKOUT / "docs").glob("*.html"))
MACHINE_PATH = re.compile(r"/var/lib|/work/|/tmp/|/root\b")
MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HTML_LINK = re.compile(r"\b(?:href|src)=\"([^\"]*)\"")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def md_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces → hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def anchors(path: Path) -> set[str]:
    text = path.read_text()
    if path.suffix == ".html":
        return set(re.findall(r"\bid=\"([^\"]+)\"", text))
    return md_anchors(text)


def links(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".html":
        return [html.unescape(link) for link in HTML_LINK.findall(text)]
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)   # code blocks hold commands, not links
    return MD_LINK.findall(re.sub(r"`[^`\n]*`", "", text))


@pytest.mark.parametrize("path", DOCS + [CHECKOUT / "README.md"], ids=lambda p: p.name)
def test_links_land_in_the_repository(path):
    dead = []
    for link in links(path):
        if SCHEME.match(link):            # https:, mailto:: another site's business
            continue
        target, _, fragment = link.partition("#")
        dest = (path.parent / target.split("?")[0]).resolve() if target else path
        if not dest.is_relative_to(CHECKOUT.resolve()) or not dest.exists():
            dead.append(link)
        elif fragment and dest.is_file() and dest.suffix in (".md", ".html") and fragment not in anchors(dest):
            dead.append(link)
    assert dead == [], f"{path.name}: links to files or anchors that are not in the repository: {dead[:5]}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_paths_of_the_machine_that_made_them(path):
    found = [f"{path.name}:{n}: {line.strip()[:100]}" for n, line in enumerate(path.read_text().splitlines(), 1)
             if MACHINE_PATH.search(line)]
    assert found == []


def test_the_checks_catch_what_they_are_for(tmp_path, monkeypatch):
    """A table copied from a run directory fails both."""
    page = tmp_path / "table.html"
    page.write_text('<p>matrix: /work/main/matrix.yaml</p><a href="logs/x/">logs</a><a href="#c">c</a>'
                    '<td id="c"></td><a href="#gone">x</a><a href="https://git.kernel.org/x">k</a>')
    monkeypatch.setattr("tests.unit.test_docs.CHECKOUT", tmp_path)
    with pytest.raises(AssertionError, match=r"\['logs/x/', '#gone'\]"):
        test_links_land_in_the_repository(page)
    with pytest.raises(AssertionError, match="table.html:1"):
        test_no_paths_of_the_machine_that_made_them(page)
    doc = tmp_path / "a.md"
    doc.write_text("# A title, here\n\n[ok](#a-title-here) [bad](b.md) `[not](a link)`\n")
    with pytest.raises(AssertionError, match=r"\['b.md'\]"):
        test_links_land_in_the_repository(doc)
