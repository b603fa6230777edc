"""The HTML report in a real browser: headless Chromium renders the golden table page (cells expanded), and the
screenshot must show each verdict's background colour and the timeline plots' new/old/ESTALE bars. Then the page
as its inline script leaves it (`--dump-dom`): the filters in the URL (`#only=regression`) hide the other cells and
the rows left empty, and every cell has an anchor that the page's links land on.

This is what a user sees, not what the template says: a CSS typo, an SVG the browser refuses, or escaped markup
all pass the golden-file test and fail here. The screenshot is kept in the test's tmp dir for a look.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent.parent / "unit" / "golden" / "table.html"
COLOURS = {   # what must be on screen → its RGB (lab/templates/report.html.j2's CSS, lab/render/timeplot.py KIND_COLOURS)
    "pass cell": (0xd8, 0xf3, 0xd8), "expected-fail cell": (0xf3, 0xe3, 0xc8), "regression cell": (0xf7, 0xb8, 0xb8),
    "new bar": (0x2e, 0x9e, 0x4f), "old bar": (0xe0, 0xa0, 0x20), "ESTALE bar": (0xd0, 0x30, 0x30),
}


def browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def png_pixels(data: bytes) -> Counter:
    """RGB counts of an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes), without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, prev, counts = zlib.decompress(idat), width * channels, bytearray(width * channels), Counter()
    for row in range(height):
        filt, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        counts.update(tuple(line[i:i + 3]) for i in range(0, stride, channels))
        prev = line
    return counts


def test_report_renders_verdict_colours_and_timeline_plots_in_chromium(tmp_path):
    chromium = browser()
    if chromium is None:
        pytest.fail("no Chromium: the CI installs the chromium package for this test")
    page = tmp_path / "table.html"
    page.write_text(GOLDEN.read_text().replace("<details>", "<details open>"))
    shot = tmp_path / "table.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--force-device-scale-factor=1", f"--screenshot={shot}", "--window-size=1800,2400",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    pixels = png_pixels(shot.read_bytes())
    seen = {name: pixels[rgb] for name, rgb in COLOURS.items()}
    assert all(n > 200 for n in seen.values()), seen


# ---- the page after its script ran: filters and anchors (issue 20) -----------------------------------------------

class Cells(HTMLParser):
    """The grid's cells of a dumped DOM: (id, classes, tags, row hidden?, details open?), and every id and href."""

    def __init__(self):
        super().__init__()
        self.cells, self.ids, self.hrefs, self.row_hidden, self.in_grid = [], [], [], False, False
        self.form_hidden = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if "href" in a:
            self.hrefs.append(a["href"])
        if tag == "form" and a.get("id") == "filters":
            self.form_hidden = "hidden" in a
        if tag == "table" and a.get("id") == "grid":
            self.in_grid = True
        elif tag == "tr" and self.in_grid:
            self.row_hidden = "hidden" in a
        elif tag == "td" and self.in_grid:
            self.cells.append({"id": a.get("id"), "classes": (a.get("class") or "").split(),
                               "tags": (a.get("data-tags") or "").split(), "row_hidden": self.row_hidden,
                               "open": False})
        elif tag == "details" and self.in_grid and self.cells:
            self.cells[-1]["open"] = "open" in a

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_grid = False


def dump_dom(page: Path, fragment: str, tmp_path: Path) -> Cells:
    """The DOM after the page's script ran, as headless Chromium serialises it."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    r = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom",
                        page.as_uri() + fragment], capture_output=True, text=True, timeout=120, check=True)
    parsed = Cells()
    parsed.feed(r.stdout)
    assert parsed.cells, r.stdout[:500] + r.stderr[-2000:]
    return parsed


def filtered_page(tmp_path: Path) -> Path:
    """A table with every kind of cell, flaky ones, and one changed since a baseline."""
    from lab.render import Context, render
    from tests.unit.test_report import META, baseline_comparison, fixed_records, repeated_records
    records = fixed_records() + repeated_records()
    page = tmp_path / "table.html"
    page.write_text(render(records, "html", meta=META, context=Context(baseline=baseline_comparison(records))))
    return page


@pytest.mark.parametrize("only", [[], ["regression"], ["changed", "flaky"], ["expected-fail", "unexpected-pass"]])
def test_filters_in_the_url_show_only_those_cells(tmp_path, only):
    if browser() is None:
        pytest.fail("no Chromium: the CI installs the chromium package for this test")
    dom = dump_dom(filtered_page(tmp_path), f"#only={','.join(only)}" if only else "", tmp_path)
    assert dom.form_hidden is False                                    # the script ran and showed the form
    shown = [c for c in dom.cells if "filtered" not in c["classes"]]
    if not only:
        assert shown == dom.cells and not any(c["row_hidden"] for c in dom.cells)
        return
    assert shown and all(set(c["tags"]) & set(only) for c in shown)
    assert all(not set(c["tags"]) & set(only) for c in dom.cells if c not in shown)
    rows_shown = {c["row_hidden"] for c in shown}
    assert rows_shown == {False}                                       # a row with a shown cell stays
    for c in dom.cells:                                                # a row without one is hidden
        if c["row_hidden"]:
            assert "filtered" in c["classes"]
    assert any(c["row_hidden"] for c in dom.cells)


def test_every_cell_has_an_anchor_and_every_anchor_link_lands(tmp_path):
    if browser() is None:
        pytest.fail("no Chromium: the CI installs the chromium package for this test")
    target = "cell-mainline-4.19-fix__vers-4.0__leases-on"
    dom = dump_dom(filtered_page(tmp_path), f"#{target}", tmp_path)
    ran = [c for c in dom.cells if "not-run" not in c["classes"]]
    assert all(c["id"] and c["id"].startswith("cell-") for c in ran)
    assert len(dom.ids) == len(set(dom.ids))                           # unique on the page
    internal = {h[1:] for h in dom.hrefs if h.startswith("#")}
    assert {c["id"] for c in ran} <= internal                          # each cell links to itself…
    assert internal <= set(dom.ids)                                    # …and no internal link is dead
    assert [c["id"] for c in dom.cells if c["open"]] == [target]       # the linked cell opens
