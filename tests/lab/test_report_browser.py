"""The HTML report in a real browser: headless Chromium renders the golden table page (cells expanded), and the
screenshot must show each verdict's background colour and the timeline plots' new/old/ESTALE bars.

This is what a user sees, not what the template says: a CSS typo, an SVG the browser refuses, or escaped markup
all pass the golden-file test and fail here. The screenshot is kept in the test's tmp dir for a look.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent.parent / "unit" / "golden" / "table.html"
COLOURS = {   # what must be on screen → its RGB (lab/report.py's CSS and KIND_COLOURS)
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
