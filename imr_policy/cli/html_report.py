"""One self-contained HTML report of a policy diff and its impact, to attach to a change request.

No external assets: the style sheet is inline and the impact counts are an inline SVG bar chart, so
the file renders the same offline, in a mail client's preview or in an archive years later. Every
user value is escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from imr_policy.cli.diff_report import (
    EFFECT_WORDS,
    Row,
    case_yaml,
    decisive_text,
    example_line,
    examples_note,
    headline,
    kind_text,
    ordered,
    pair_title,
    procedure_outline,
    procedure_title,
    rows,
    summary_line,
    visits_line,
)
from imr_policy.compliance.diff import EntityChange, PolicyDiff
from imr_policy.compliance.impact import ImpactReport
from imr_policy.evaluate import ENGINE_VERSION

_CODE = re.compile(r"`([^`<>]+)`")


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code> elements."""
    return _CODE.sub(r"<code>\1</code>", escape(text))


STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a; margin: 2rem auto;
       max-width: 68rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
     border-bottom: 1px solid #d6dbe0; padding-bottom: .2rem; } h3 { font-size: 1.05rem; }
code { background: #f1f3f5; padding: 0 .2em; border-radius: 3px; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
th, td { border: 1px solid #d6dbe0; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f7f9; } td.old { background: #fff1f0; } td.new { background: #effaf1; }
.effect { font-size: .8rem; padding: .05rem .4rem; border-radius: 1rem; margin-left: .4rem; }
.effect-decision { background: #ffe2c6; } .effect-basis { background: #dde9ff; } .effect-text { background: #eceff1; }
.summary { font-weight: 600; } .meta { color: #59636e; }
pre.case { background: #f6f8fa; border: 1px solid #d6dbe0; padding: .6rem; overflow-x: auto; font-size: .85rem; }
svg text { font: 12px system-ui, sans-serif; fill: #1d232a; } svg rect.bar { fill: #3f7fbf; }
header#title { border-bottom: 2px solid #1d232a; margin-bottom: 1rem; }
table.sides th { width: 9rem; } table.sides td { font-family: ui-monospace, monospace; font-size: .85rem; }
section#summary { background: #f5f7f9; border: 1px solid #d6dbe0; padding: .2rem 1rem .6rem; }
@media print {
  @page { margin: 1.8cm 1.5cm; }
  body { font-size: 10.5pt; max-width: none; margin: 0; padding: 0; color: #000; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  table, .change, .example, svg, section#summary { break-inside: avoid; page-break-inside: avoid; }
  section#diff, section#impact { break-before: page; page-break-before: always; }
  pre.case { white-space: pre-wrap; }
  td.old, td.new, th, section#summary { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


@dataclass(frozen=True, slots=True)
class SideInfo:
    """What the title page says about one side: how it was named, its content hash, its git revision."""

    label: str
    content_hash: str
    revision: str | None = None  # a commit, with "(uncommitted changes)" when the files differ from it


@dataclass(frozen=True, slots=True)
class ReportInfo:
    prepared: str  # when the report was made, ISO 8601 UTC
    old: SideInfo
    new: SideInfo


def _title_page(info: ReportInfo) -> str:
    def side(name: str, s: SideInfo) -> str:
        revision = escape(s.revision) if s.revision else "not in a git repository"
        return (
            f'<tr><th rowspan="3">{name}</th><td>{escape(s.label)}</td></tr>'
            f"<tr><td>content hash {escape(s.content_hash)}</td></tr>"
            f"<tr><td>git revision {revision}</td></tr>"
        )

    return (
        '<header id="title"><h1>Policy change report</h1>'
        f'<p class="meta">Prepared <time id="prepared" datetime="{escape(info.prepared)}">'
        f"{escape(info.prepared)}</time> by imr-policy {escape(ENGINE_VERSION)}</p>"
        f'<table class="sides" id="sides">{side("Old policy set", info.old)}{side("New policy set", info.new)}'
        "</table></header>"
    )


def _summary(diff: PolicyDiff, r: ImpactReport | None) -> str:
    """What changed and what it does to decisions, first."""
    parts = [
        '<section id="summary"><h2>Summary</h2>',
        f'<p class="summary" id="diff-summary">{_inline(summary_line(diff))}</p>',
    ]
    if r is not None:
        what = "generated cases" if r.mode == "generated" else r.corpus
        parts.append(
            f"<p>Effect on decisions, over {r.entries:,} cases of <code>{escape(what)}</code>:</p><ul>"
            f'<li class="summary" id="impact-summary">changed: {r.changed_cases:,} cases, '
            f"{r.changed_items:,} items</li>"
        )
        if r.changed_items:
            parts.append(f"<li>{escape(visits_line(r))}</li>")
        parts.append(f"<li>{r.invalid:,} invalid cases, {r.errors:,} engine errors</li></ul>")
        if r.by_jurisdiction:
            parts.append(
                '<table id="summary-by-jurisdiction"><tr><th>jurisdiction</th><th>changed items</th>'
                "<th>approved visits gained</th><th>lost</th><th>net</th></tr>"
            )
            parts.extend(
                f"<tr><td>{escape(b.key)}</td><td>{b.items:,}</td><td>{b.gained:,}</td><td>{b.lost:,}</td>"
                f"<td>{b.gained - b.lost:+,}</td></tr>"
                for b in r.by_jurisdiction
            )
            parts.append("</table>")
    parts.append("</section>")
    return "".join(parts)


def _change_table(c: EntityChange, row_list: list[Row]) -> str:
    cells = []
    for r in row_list:
        if r.minus or r.plus:
            minus = "<br>".join(f"&minus; {_inline(m)}" for m in r.minus)
            plus = "<br>".join(f"+ {_inline(p)}" for p in r.plus)
            cells.append(f'<tr><th>{escape(r.label)}</th><td class="old">{minus}</td><td class="new">{plus}</td></tr>')
        else:
            old = _inline(r.old) if r.old is not None else ""
            new = _inline(r.new) if r.new is not None else ""
            cells.append(f'<tr><th>{escape(r.label)}</th><td class="old">{old}</td><td class="new">{new}</td></tr>')
    effect = f'<span class="effect effect-{c.effect}">{escape(EFFECT_WORDS[c.effect])}</span>'
    body = "".join(cells)
    table = f"<table><tr><th>field</th><th>old</th><th>new</th></tr>{body}</table>" if cells else ""
    return (
        f'<div class="change" data-entity="{escape(c.entity)}" data-id="{escape(c.id)}" data-kind="{escape(c.kind)}">'
        f"<h3>{_inline(headline(c))}{effect}</h3>{table}</div>"
    )


def bar_chart(title: str, bars: list[tuple[str, int]], *, chart_id: str) -> str:
    """A horizontal bar chart as inline SVG; each bar carries its label and count as data attributes."""
    if not bars:
        return ""
    label_w, bar_w, row_h = 330, 360, 24
    top = max(n for _, n in bars) or 1
    height = row_h * len(bars) + 30
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{label_w + bar_w + 80}" height="{height}" viewBox="0 0 {label_w + bar_w + 80} {height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" font-weight="600">{escape(title)}</text>',
    ]
    for i, (label, n) in enumerate(bars):
        y = 24 + i * row_h
        width = max(1, round(bar_w * n / top))
        shown = label if len(label) <= 52 else label[:51] + "…"
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(shown)}</text>')
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{width}" height="{row_h - 8}" '
            f'data-label="{escape(label)}" data-count="{n}"><title>{escape(label)}: {n:,}</title></rect>'
        )
        parts.append(f'<text x="{label_w + width + 6}" y="{y + 15}">{n:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _impact(r: ImpactReport) -> str:
    what = "generated cases (Hypothesis, over the changed region)" if r.mode == "generated" else r.corpus
    notes = "".join(f"<li>{_inline(n)}</li>" for n in r.notes)
    parts = [
        '<section id="impact"><h2>Effect on decisions, in detail</h2>',
        f'<p class="meta">Cases: <code>{escape(what)}</code>; engine <code>{escape(r.engine)}</code>.</p>',
        f"<ul>{notes}" if notes else "<ul>",
        f"<li>{r.entries:,} cases: {r.compared:,} compared, {r.invalid:,} invalid, {r.errors:,} engine errors</li>",
        f"<li>changed: {r.changed_cases:,} cases, {r.changed_items:,} items</li>",
        f"<li>{r.basis_only_items:,} more items keep their decision but cite another rule or edition</li></ul>",
    ]
    if r.changed_items:
        parts.append(f'<p class="summary" id="impact-visits">{escape(visits_line(r))}</p>')
        for title, key, rows_ in (
            ("By jurisdiction", "jurisdiction", r.by_jurisdiction),
            ("By service", "service", r.by_service_visits),
            ("By month of the date of service", "month", r.by_month),
        ):
            parts.append(
                f'<h3>{escape(title)}</h3><table id="impact-by-{key}"><tr><th>{key}</th><th>changed items</th>'
                "<th>approved visits gained</th><th>lost</th><th>net</th></tr>"
            )
            parts.extend(
                f"<tr><td>{escape(b.key)}</td><td>{b.items:,}</td><td>{b.gained:,}</td><td>{b.lost:,}</td>"
                f"<td>{b.gained - b.lost:+,}</td></tr>"
                for b in rows_
            )
            parts.append("</table>")
        visits = [(f"{b.key}: gained", b.gained) for b in r.by_service_visits if b.gained] + [
            (f"{b.key}: lost", b.lost) for b in r.by_service_visits if b.lost
        ]
        parts.append(bar_chart("Approved visits gained and lost, by service", visits, chart_id="chart-visits"))
        if len(r.by_month) > 1:
            parts.append(
                bar_chart(
                    "Changed items by month of the date of service",
                    [(b.key, b.items) for b in r.by_month],
                    chart_id="chart-month",
                )
            )
        parts.append(
            bar_chart(
                "Changed items by kind of change", [(kind_text(k), n) for k, n in r.by_kind], chart_id="chart-kind"
            )
        )
        if r.by_imr:
            parts.append(
                bar_chart("IMR outcome changes", [(f"{o} → {w}", n) for (o, w), n in r.by_imr], chart_id="chart-imr")
            )
        parts.append("<h3>By cause</h3><table><tr><th>cause</th><th>what changed in it</th><th>items</th></tr>")
        for c, n in r.by_cause:
            notes_html = "<br>".join(_inline(x) for x in c.notes) or "—"
            parts.append(f"<tr><td>{_inline(c.label)}</td><td>{notes_html}</td><td>{n:,}</td></tr>")
        parts.append(f"</table><h3>Examples</h3><p>{_inline(examples_note(r))}.</p>")
        for e in r.examples:
            shrunk = " (shrunk)" if e.shrunk else ""
            parts.append(
                f'<div class="example"><p><strong>{_inline(example_line(e))}{shrunk}</strong><br>'
                f"old basis: {escape(decisive_text(e.change.old))}<br>new basis: {escape(decisive_text(e.change.new))}"
                f'<br>cause: {escape(e.cause.label)}</p><pre class="case">{escape(case_yaml(e))}</pre></div>'
            )
    if r.problems:
        items = "".join(f"<li><code>{escape(p)}</code></li>" for p in r.problems)
        parts.append(f"<h3>Problems (first ones)</h3><ul>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def html(
    diff: PolicyDiff, *, old: str, new: str, impact: ImpactReport | None = None, info: ReportInfo | None = None
) -> str:
    """The report: a title page (`info`: date, each side's content hash and git revision), the summary
    of what changed and what it does to decisions, then the changes, then the effect on decisions."""
    title = (
        _title_page(info)
        if info is not None
        else '<header id="title"><h1>Policy change report</h1>'
        f'<p class="meta">old: <code>{escape(old)}</code><br>new: <code>{escape(new)}</code><br>'
        f"imr-policy {escape(ENGINE_VERSION)}</p></header>"
    )
    body = [title, _summary(diff, impact), '<section id="diff"><h2 class="part">What changed in the rules</h2>']
    if diff.jurisdictions:
        body.append("<h2>Jurisdiction profiles</h2>")
        body.extend(_change_table(c, rows(c, None)) for c in ordered(diff.jurisdictions))
    for pair in diff.differing:
        body.append(f'<h2 class="edition-pair">{_inline(pair_title(pair))}</h2>')
        body.extend(_change_table(c, rows(c, pair)) for c in ordered(pair.changes))
    for ppair in diff.differing_procedures:
        body.append(f'<h2 class="procedure-pair">{_inline(procedure_title(ppair))}</h2>')
        if ppair.relation in ("added", "removed"):
            body.append(f"<p>{_inline(procedure_outline(ppair))}</p>")
        body.extend(_change_table(c, rows(c, None)) for c in ordered(ppair.changes))
    body.append("</section>")
    if impact is not None:
        body.append(_impact(impact))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Policy diff: {escape(old)} → {escape(new)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


__all__ = ["ReportInfo", "SideInfo", "bar_chart", "html"]
