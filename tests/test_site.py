"""The site renders: an offline preview of the book (smalldocs over nbdev's `_proc/`). Its pages and links are checked
everywhere (no browser needed); only the screenshots need headless Chromium, and skip without it, except in CI
(env CI set), where that fails."""
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


def test_preview_has_every_chapter_and_its_links_resolve():
    "No browser: a page for every chapter, the sidebar in chapter order, every local link, image and script found."
    preview = built_preview()
    problems = check_site.sidebar_problems() + check_site.preview_problems(preview)
    assert not problems, "\n".join(problems)
    html = (preview / "00_index.html").read_text(encoding="utf-8")
    assert "Quick start" in html and "pip install torch==2.13.0" in html


def test_preview_problems_are_found(tmp_path):
    "The link check finds a missing chapter page and a dangling link (it is not vacuous)."
    site = tmp_path / "_preview"
    site.mkdir()
    (site / "00_index.html").write_text('<a href="01_attention.html#x">1</a> <img src="img/no.png"> '
                                        '<a href="https://example.org/">web</a> <a href="#top">top</a>')
    problems = check_site.preview_problems(site)
    assert any("points at img/no.png" in p for p in problems), problems
    assert any("points at 01_attention.html#x" in p for p in problems), problems
    assert any("no page for 05_gpt.ipynb" in p for p in problems), problems
    assert not any("example.org" in p or "#top" in p for p in problems), problems


@pytest.mark.parametrize("page", ["00_index.html", "first chapter"])
def test_screenshot(page):
    need_chromium()
    preview = built_preview()
    if page == "first chapter":
        page = Path(check_site.chapters()[1]).with_suffix(".html").name
    png = check_site.screenshot(preview / page, preview / "screenshots" / page.replace(".html", ".png"))
    assert_real_picture(png)
