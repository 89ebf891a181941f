"""Self-contained HTML views of the report, readable offline.

- `render_html(markdown, title, images)`: a report page as one standalone HTML page: the
  overview (reports/summary.html; Snakemake's `--report` shows it inline, category
  "Comparison") and each study's page (reports/studies/<study>.html: its setting, table and
  figures together), every figure embedded as a data URI, no script and no external resource.
- `write_curves_data(histories, path)`: one study's per-epoch curves as a JSON list
  (reports/figures/curves/<study>.json), the data of `dvc plots show` (one plot per study, one
  colour per variant: workflow/report/dvc_curves.json is its Vega-Lite template).
- `dvc_html_template()`: an HTML page for `dvc plots show --html-template` with Vega, Vega-Lite
  and vega-embed inlined (from the vl-convert-python package), so the plots render offline;
  DVC's default page loads them from a CDN.

    python -m textclf.report.html --dvc-template .dvc/tmp/plots.html
"""

from __future__ import annotations

import argparse
import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from markdown_it import MarkdownIt

from textclf import atomic
from textclf.report.numbers import json_number

CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; color: #1f2328; }
header, main { max-width: 1500px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 12px; border-bottom: 1px solid #d0d7de; }
h1 { font-size: 1.5em; margin: 8px 0; }
h2 { font-size: 1.3em; margin: 0 0 6px; padding-top: 8px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
nav.toc { margin: 8px 0 12px; }
nav.toc a { margin-right: 12px; white-space: nowrap; }
section.study, section.extra { border-bottom: 2px solid #d0d7de; padding: 8px 0 18px; }
table { border-collapse: collapse; display: block; overflow-x: auto; max-width: 100%; margin: 6px 0 10px;
        font-size: 12.5px; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; white-space: nowrap; text-align: right; }
th { background: #f6f8fa; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 6px 0 12px; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.figures p { margin: 0; display: contents; }
.figures img { max-width: calc(50% - 8px); }
.figures img[data-file$="_curves.png"] { max-width: 100%; }
code { background: #f6f8fa; padding: 0 3px; border-radius: 3px; font-size: 12.5px; }
.missing-figure { color: #b42318; }
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "section"


def _figure_key(src: str) -> str:
    """'../figures/x.png' (a study page's link) and 'figures/x.png' both name figures/x.png."""
    while src.startswith("../"):
        src = src[3:]
    return src


def _embed_images(tokens: list, images: Mapping[str, bytes]) -> None:
    """Point every image at a data URI of its bytes (`images`: path relative to the report
    folder -> PNG bytes); a missing one becomes a visible note instead of a broken image.
    Links to a Markdown page of the report point at its HTML page."""
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                if href.endswith(".md") and "://" not in href:
                    child.attrSet("href", href[:-3] + ".html")
                continue
            if child.type != "image":
                continue
            src = str(child.attrGet("src") or "")
            if src.startswith("data:"):
                continue
            key = _figure_key(src)
            if key in images:
                mime = "image/png" if key.lower().endswith(".png") else "image/svg+xml"
                child.attrSet("src", f"data:{mime};base64," + base64.b64encode(images[key]).decode("ascii"))
                child.attrSet("data-file", key)
                child.attrSet("loading", "eager")
            else:
                child.type = "html_inline"
                child.content = f'<span class="missing-figure">(figure {html.escape(src)} is missing)</span>'


def _split_sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first `## ` heading, then (heading, body) per `## ` section."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    return parts[0], [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]


def render_html(markdown: str, title: str, images: Mapping[str, bytes] | None = None) -> str:
    """A report page (summary.md, or a study's page) as one standalone page: images inlined
    from `images` (no disk read here), one <section> per `## ` heading (a study's: its table and
    figures together; `data-study` names it), a contents line at the top."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    preamble, sections = _split_sections(markdown)

    def convert(text: str) -> str:
        tokens = md.parse(text)
        _embed_images(tokens, images or {})
        body = md.renderer.render(tokens, md.options, {})
        # consecutive figure paragraphs side by side (each stays a <p><img></p>)
        return re.sub(r"((?:<p><img [^>]*></p>\n)+)", r'<div class="figures">\n\1</div>\n', body)

    toc, blocks = [], []
    for heading, body in sections:
        is_study = not heading.startswith(("Datasets", "Overview", "Headline"))
        anchor = ("study-" if is_study else "") + _slug(heading)
        toc.append(f'<a href="#{anchor}">{html.escape(heading)}</a>')
        attrs = f'class="study" data-study="{html.escape(heading)}"' if is_study else 'class="extra"'
        blocks.append(f'<section id="{anchor}" {attrs}>\n<h2>{html.escape(heading)}</h2>\n{convert(body)}</section>')
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<header>\n{convert(preamble)}<nav class=\"toc\">Contents: {' '.join(toc)}</nav>\n</header>",
        "<main>",
        *blocks,
        "</main>",
        "</body>",
        "</html>",
        "",
    ])


# --------------------------------------------------------------------------- DVC plots


def curves_records(histories: Mapping[tuple[str, str], Sequence[tuple[pd.DataFrame | None, str]]]) -> list[dict[str, Any]]:
    """Long-format rows for DVC: one per (dataset, variant, seed, epoch, split) with accuracy
    and loss. `split` names where it was measured: train, val, or test (eval_split: test)."""
    records: list[dict[str, Any]] = []
    for (dataset, variant), runs in sorted(histories.items()):
        for seed_index, (hist, eval_split) in enumerate(runs, start=1):
            if hist is None or not len(hist):
                continue
            held = "test" if eval_split == "test" else "val"
            for row in hist.itertuples():
                for split, prefix in (("train", "train"), (held, "val")):
                    acc, loss = getattr(row, f"{prefix}_acc", None), getattr(row, f"{prefix}_loss", None)
                    if acc is None:
                        continue
                    records.append({"dataset": dataset, "variant": variant, "run": seed_index, "epoch": int(row.epoch),
                                    "split": split, "series": f"{variant} · {split}",
                                    "accuracy": json_number(acc), "loss": json_number(loss)})
    return records


def write_curves_data(histories: Mapping[tuple[str, str], Sequence[tuple[pd.DataFrame | None, str]]],
                      path: Path) -> Path:
    atomic.write_json(path, curves_records(histories))
    return path


def vega_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one classic script (globals vegaEmbed, vega, vegaLite),
    from the vl-convert-python wheel: no network at build or view time."""
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    # its top-level `const`s must not collide with the page's `var spec` (DVC's plot divs)
    return "(function () {\n" + bundle.replace("</script", "<\\/script") + "\n})();"


def dvc_html_template() -> str:
    """A page for `dvc plots show --html-template`: DVC replaces {plot_divs}; the libraries are
    inline (the template has no {scripts} placeholder, so DVC's CDN tags are never added)."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "{refresh_tag}",
        "<title>textclf-pipeline: DVC plots (offline)</title>",
        f"<script>{vega_bundle()}</script>",
        # dvc.yaml lists the curves of both settings; the one never reported in a revision comes
        # as an empty spec: leave it out instead of drawing an empty frame
        "<script>(function () { const embed = window.vegaEmbed; window.vegaEmbed = function (el, spec, opts) {"
        " if (spec && spec.data) { return embed(el, spec, opts); }"
        " const div = document.querySelector(el); if (div) { div.style.display = 'none'; }"
        " return Promise.resolve(null); }; })();</script>",
        "<style>body { font-family: sans-serif; margin: 12px; } p { max-width: 880px; } "
        "body > div { margin: 0 0 18px; }</style>",
        "</head>",
        "<body>",
        "<h1>Learning curves per study</h1>",
        "<p>One plot per study, one colour per variant; solid = validation, dashed = test "
        "(variants that evaluate on test), dotted = training; point shape = revision (commit or experiment).</p>",
        "{plot_divs}",
        "</body>",
        "</html>",
        "",
    ])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc-template", type=Path, required=True,
                        help="write the offline HTML template for `dvc plots show --html-template` here")
    args = parser.parse_args(argv)
    atomic.write_text(args.dvc_template, dvc_html_template())
    print(f"offline template for dvc plots: {args.dvc_template} "
          f"(dvc plots show --html-template {args.dvc_template})")


if __name__ == "__main__":
    main()
