#!/usr/bin/env python
"""Check the book's site source, and build an offline preview of it.

The real site is built by `nbdev-docs`, which needs Quarto (quarto.org). Without Quarto this checks
what Quarto would be given:

1. `nbdev-proc-nbs` succeeds: it refreshes `nbs/_quarto.yml`, `nbs/nbdev.yml`, `nbs/sidebar.yml`
   and writes the processed notebooks to `_proc/`;
2. the sidebar lists every notebook in `nbs/`, in chapter order, and nothing else;
3. every image a chapter's markdown or README.md references exists, and every link from one
   chapter to another (`NN_name.ipynb`) points at a notebook that exists.

`--preview` also renders `_proc/` with smalldocs (a pure-Python Quarto-like renderer) into
`_preview/` and checks that it has a page for every chapter and that every link, image and script of its
pages resolves (no browser needed); maths uses a local KaTeX where Debian's `libjs-katex` is installed (the
smalldocs default loads it from a CDN). `--screenshots DIR` then photographs its front page and first chapter with headless
Chromium. Open `_preview/00_index.html` in a browser to read the preview.
"""
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS, PROC, PREVIEW = ROOT / "nbs", ROOT / "_proc", ROOT / "_preview"
# nbdev-proc-nbs passes its (empty) file filters on to the sidebar writer, which then lists every
# file in nbs/ (nbdev.yml, styles.css, ...); naming the page types keeps the sidebar to the pages.
PAGE_RE = r"\.(?:ipynb|qmd|html)$"
_img_md = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
_img_html = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)")
_nb_link = re.compile(r"\]\(\s*<?([^)\s>#]+\.ipynb)")


def tool(name: str) -> str:
    "A console script of this Python's environment (works without activating the venv)."
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def chapters() -> list[str]:
    "The notebooks the site shows, in order (nbdev skips names starting with _ or .)."
    return sorted(p.name for p in NBS.glob("*.ipynb") if not p.name.startswith(("_", ".")))


def proc_nbs() -> None:
    "Run `nbdev-proc-nbs` (what `nbdev-docs` runs before Quarto); raise with its output on failure."
    r = subprocess.run([tool("nbdev-proc-nbs"), "--file-re", PAGE_RE], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"nbdev-proc-nbs failed (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def sidebar_problems() -> list[str]:
    want, problems = chapters(), []
    for f in (NBS / "sidebar.yml", PROC / "sidebar.yml"):
        if not f.exists():
            problems.append(f"{f.relative_to(ROOT)} is missing: run nbdev-proc-nbs --file-re '{PAGE_RE}'")
            continue
        got = yaml.safe_load(f.read_text())["website"]["sidebar"]["contents"]
        if got != want:
            problems.append(f"{f.relative_to(ROOT)} lists {got}, expected every chapter in order: {want}")
    return problems


def _markdown(nb_path: Path) -> str:
    import json
    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _local(ref: str) -> bool:
    return not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", ref, re.I)  # not http:, data:, attachment:, ...


def reference_problems() -> list[str]:
    "Images (chapters and README) and chapter-to-chapter links that point at nothing."
    problems = []
    sources = [(p, _markdown(p), p.parent) for p in sorted(NBS.glob("*.ipynb"))]
    sources.append((ROOT / "README.md", (ROOT / "README.md").read_text(encoding="utf-8"), ROOT))
    for path, text, base in sources:
        for ref in _img_md.findall(text) + _img_html.findall(text):
            if _local(ref) and not (base / ref.split("?")[0]).exists():
                problems.append(f"{path.relative_to(ROOT)} shows image {ref}, which does not exist "
                                f"(looked for {(base / ref).resolve().relative_to(ROOT)})")
        for ref in _nb_link.findall(text):
            if _local(ref) and not (base / ref).exists():
                problems.append(f"{path.relative_to(ROOT)} links to {ref}, which does not exist")
    return list(dict.fromkeys(problems))  # each problem once


def build_preview(out: Path = PREVIEW, proc: bool = True) -> Path:
    "Render `_proc/` with smalldocs into `out` (an ignored folder); returns `out`."
    if proc:
        proc_nbs()
    cfg = yaml.safe_load((PROC / "nbdev.yml").read_text())
    rendered = PROC / cfg["project"]["output-dir"]
    shutil.rmtree(rendered, ignore_errors=True)
    r = subprocess.run([tool("smalldocs"), "render", "--quiet", str(PROC)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0 or not (rendered / "00_index.html").exists():
        raise RuntimeError(f"smalldocs render _proc failed (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(rendered), str(out))
    localise_katex(out)
    return out


_html_ref = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)""")


def preview_problems(site: Path = PREVIEW) -> list[str]:
    "A page missing for a chapter, or a link, image or script of a rendered page that points at nothing."
    problems = [f"{site.name}/ has no page for {nb}" for nb in chapters()
                if not (site / Path(nb).with_suffix(".html")).exists()]
    for page in sorted(site.rglob("*.html")):
        for ref in _html_ref.findall(page.read_text(encoding="utf-8")):
            path = ref.split("#")[0].split("?")[0]
            if _local(ref) and path and not (page.parent / path).exists():
                problems.append(f"{page.relative_to(site.parent)} points at {ref}, which does not exist")
    return list(dict.fromkeys(problems))


KATEX_CDN = "https://cdn.jsdelivr.net/npm/katex@"
KATEX_LOCAL = Path("/usr/share/javascript/katex")  # Debian's libjs-katex


def localise_katex(site: Path, katex: Path = KATEX_LOCAL) -> bool:
    "Serve the preview's maths from a local KaTeX (apt-get install libjs-katex) instead of its CDN."
    if not (katex / "katex.min.js").exists():
        return False
    shutil.copytree(katex, site / "site_libs" / "katex", dirs_exist_ok=True)
    cdn = re.compile(re.escape(KATEX_CDN) + r"[^/]+/dist/([\w./-]+)")
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if KATEX_CDN not in text:
            continue
        up = "../" * (len(page.relative_to(site).parts) - 1)
        page.write_text(cdn.sub(lambda m: f"{up}site_libs/katex/" + m.group(1).replace("auto-render.min.js", "auto-render.js"), text),
                        encoding="utf-8")
    return True


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def screenshot(html: Path, png: Path, size: str = "1280,900", timeout: int = 60) -> Path:
    "Photograph a local HTML page with headless Chromium; returns the PNG path."
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no chromium found: apt-get install -y chromium")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={size}", html.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium could not screenshot {html} (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return png


def main(argv=None) -> int:
    from gpt2book.common import Parser
    p = Parser(prog="python tools/check_site.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--preview", action="store_true", help="also render the offline preview into _preview/")
    p.add_argument("--screenshots", type=Path, help="with --preview: save screenshots of the front page and first chapter here")
    a = p.parse_args(argv)
    generated = ["_quarto.yml", "nbdev.yml", "sidebar.yml"]
    before = {f: (NBS / f).read_text() if (NBS / f).exists() else None for f in generated}
    proc_nbs()
    for f in generated:
        if (NBS / f).read_text() != before[f]:
            print(f"note: nbdev-proc-nbs rewrote nbs/{f}; commit it", file=sys.stderr)
    problems = sidebar_problems() + reference_problems()
    for msg in problems:
        print(msg, file=sys.stderr)
    if problems:
        print(f"check_site: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_site: nbdev-proc-nbs ok; sidebar lists all {len(chapters())} notebooks in order; "
          f"every image and chapter link resolves")
    if a.preview:
        out = build_preview(proc=False)
        problems = preview_problems(out)
        for msg in problems:
            print(msg, file=sys.stderr)
        if problems:
            print(f"check_site: the preview has {len(problems)} problem(s)", file=sys.stderr)
            return 1
        print(f"preview: {out.relative_to(ROOT)}/00_index.html (a page for every chapter; every link resolves)")
        if a.screenshots:
            pages = [out / "00_index.html"] + [out / Path(c).with_suffix(".html") for c in chapters()[1:2]]
            for page in pages:
                print("screenshot:", screenshot(page, a.screenshots / page.with_suffix(".png").name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
