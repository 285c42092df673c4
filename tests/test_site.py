"""The site renders: an offline preview of the book (smalldocs over nbdev's `_proc/`), photographed
with headless Chromium. Skipped where Chromium is missing, except in CI (env CI set), where it fails."""
import functools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_site  # noqa: E402

pytestmark = pytest.mark.site


def assert_real_picture(png: Path):
    "Not a blank or broken page: a PNG of some size whose pixels vary like text and pictures do."
    from PIL import Image, ImageStat

    assert png.stat().st_size > 20_000, f"{png} is only {png.stat().st_size} bytes"
    img = Image.open(png).convert("L")
    assert img.size == (1280, 900), img.size
    std = ImageStat.Stat(img).stddev[0]
    assert std > 20, f"{png} looks blank (grey-level std {std:.1f})"
    # a rendered page: mostly light background, with dark text somewhere
    hist = img.histogram()
    dark = sum(hist[:100]) / sum(hist)
    assert 0.002 < dark < 0.5, f"{png}: {dark:.1%} dark pixels, not a page of text"


def need_chromium():
    "Skip without Chromium, except in CI (env CI set), where that is a failure."
    if check_site.find_chromium() is None:
        msg = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg + ": CI must run the screenshot test", pytrace=False)
        pytest.skip(msg)


@functools.cache
def built_preview() -> Path:
    "nbdev-proc-nbs, then smalldocs into _preview/: once per session."
    return check_site.build_preview()


def test_preview_has_every_chapter():
    need_chromium()
    preview = built_preview()
    for nb in check_site.chapters():
        page = preview / Path(nb).with_suffix(".html")
        assert page.exists(), f"the preview has no page for {nb}"
    html = (preview / "00_index.html").read_text(encoding="utf-8")
    assert "Quick start" in html and "pip install torch==2.13.0" in html


@pytest.mark.parametrize("page", ["00_index.html", "first chapter"])
def test_screenshot(page):
    need_chromium()
    preview = built_preview()
    if page == "first chapter":
        page = Path(check_site.chapters()[1]).with_suffix(".html").name
    png = check_site.screenshot(preview / page, preview / "screenshots" / page.replace(".html", ".png"))
    assert_real_picture(png)
