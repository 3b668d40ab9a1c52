"""One self-contained HTML page per study: headline results first, then the evidence.

Figures are embedded as base64 PNG and the styles are inline, so the file opens without
network access or companion files. A section that could not be computed says why.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#1d2733;
background:#f6f8fb}
main{max-width:1040px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.55em;margin:0 0 4px}
h2{font-size:1.2em;border-bottom:2px solid #1f5fa8;padding-bottom:4px;margin-top:36px}
.sub{color:#5c6f7b;margin:0 0 18px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #d5dde6;padding:4px 9px;text-align:right}
th{background:#eef3fa}
td:first-child,th:first-child{text-align:left}
table.headline td,table.headline th{font-size:1.02em;text-align:left}
figure{margin:12px 0 22px}
figcaption{color:#5c6f7b;font-size:.88em}
img{max-width:100%}
.empty{background:#fff4e5;border-left:4px solid #e9a23b;padding:8px 12px}
.note{color:#5c6f7b;font-size:.85em}
.warning{background:#fdecea;border-left:5px solid #c0392b;padding:10px 14px;font-weight:600}
"""


@dataclass
class Section:
    """One part of the report. ``empty_reason`` replaces the content when set."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)
    empty_reason: str | None = None
    #: a warning panel shown above the section's content (e.g. immortal-time bias)
    warning: str | None = None


@dataclass
class Report:
    title: str
    subtitle: str
    headline: list[tuple[str, str]]
    sections: list[Section]
    footer: str = ""


def _table(frame: pd.DataFrame, css_class: str = "") -> str:
    cls = f' class="{css_class}"' if css_class else ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _figure(caption: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render(report: Report) -> str:
    """The report as one HTML document (a string)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{html.escape(report.title)}</h1><p class='sub'>{html.escape(report.subtitle)}</p>",
        "<h2 id='headline'>Headline results</h2>",
        _table(pd.DataFrame(report.headline, columns=["Result", "Estimate"]), "headline"),
    ]
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.empty_reason:
            parts.append(f"<p class='empty'>Not shown: {html.escape(section.empty_reason)}</p>")
            continue
        if section.warning:
            parts.append(f"<div class='warning'>{html.escape(section.warning)}</div>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in section.paragraphs)
        for caption, path in section.figures:
            parts.append(_figure(caption, path))
        for caption, frame in section.tables:
            parts.append(f"<p class='note'>{html.escape(caption)}</p>{_table(frame)}")
    if report.footer:
        parts.append(f"<p class='note'>{html.escape(report.footer)}</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
