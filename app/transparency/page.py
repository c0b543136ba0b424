"""The public transparency page: the report as one self-contained HTML document.

No script, no external stylesheet, font or image: the chart is inline SVG and the styles are
inline, so the page reads the same without JavaScript, offline, and under the service's strict
Content-Security-Policy. Every figure sits in a table cell marked with ``data-instrument``,
``data-measure`` and (where it has one) ``data-item``, which is how the tests read it back.
Every value that came from the log is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any, Final

from app.transparency.service import CATEGORIES, MEASURES, WITHHELD, Figure

TITLES: Final = {
    "court_order": "Court orders",
    "search_warrant": "Search warrants",
    "fisa_order": "FISA court orders",
    "subpoena": "Subpoenas",
    "national_security_letter": "National security letters",
    "informal_request": "Informal requests",
    "none": "Requests without an order",
    "unverified": "Orders that failed verification (any instrument claimed)",
}
MEASURE_TITLES: Final = {
    "requests": "Requests received",
    "permitted": "Permitted",
    "refused": "Refused",
    "failed": "Failed (nothing released)",
}
STYLE: Final = """
body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:64rem;padding:0 1rem;
color:#1b1b1b;background:#fff}
h1{font-size:1.8rem}h2{font-size:1.3rem;margin-top:2.5rem}
table{border-collapse:collapse;margin:1rem 0;width:100%}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #8a8a8a;padding:.3rem .5rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.banded{background:#f2f2f2}
svg text{font:13px system-ui,sans-serif;fill:#1b1b1b}
"""
BAR_COLOURS: Final = {"permitted": "#1f6f43", "refused": "#a4262c", "failed": "#5c5c5c"}


def render(report: dict[str, Any], *, log_key: str | None = None) -> str:
    """The whole page for ``report``, as built by ``service.build_report``.

    ``log_key``: the audit log's public key (a C2SP verifier key), published here so that
    anyone can check the library's signed checkpoints (docs/auditors.md).
    """
    rows = report["instruments"]
    span = f"{escape(report['from'])} to {escape(report['to'])}"
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Transparency report, {span}</title>",
            f"<style>{STYLE}</style></head><body><main>",
            f"<h1>Transparency report</h1><p>Requests for patron records from {span} (UTC), "
            "as recorded in this library's audit log.</p>",
            _banding_note(report),
            "<h2 id='requests'>Requests by instrument</h2>",
            _chart(rows),
            _requests_table(rows),
            "<h2 id='released'>Records released by category</h2>",
            _released_table(rows),
            "<h2 id='refusals'>Refusals by reason</h2>",
            _refusals_table(rows),
            f"<p><small>Policy {escape(report['policy'])}; generated "
            f"{escape(report['generated_at'])}. The same figures: "
            f"<code>GET /v1/transparency?from={escape(report['from'])}"
            f"&amp;to={escape(report['to'])}</code>.</small></p>",
            _log_key(log_key),
            "</main></body></html>",
        ]
    )


def _log_key(log_key: str | None) -> str:
    if not log_key:
        return ""
    return (
        "<h2 id='log-key'>The audit log's public key</h2><p>Checkpoints of the audit log are "
        "signed with this key (a C2SP signed-note verifier key); a checkpoint, proof or "
        f"receipt that does not verify with it is not this library's.</p><pre>{escape(log_key)}"
        "</pre>"
    )


def _banding_note(report: dict[str, Any]) -> str:
    names = [
        escape(TITLES.get(row["instrument"], row["instrument"]))
        for row in report["instruments"]
        if row["banded"]
    ]
    if not names:
        return ""
    return (
        f"<p>{', '.join(names)} are reported only in bands of {int(report['band_width'])} "
        "(for example 0-249), never as exact numbers, as the law may require, and only for a "
        "calendar half-year (1 January to 30 June, 1 July to 31 December) once it has closed; "
        "for any other period they are withheld.</p>"
    )


def _cell(row: dict[str, Any], measure: str, value: Figure, item: str | None = None) -> str:
    attrs = f'data-instrument="{escape(row["instrument"])}" data-measure="{escape(measure)}"'
    if item is not None:
        attrs += f' data-item="{escape(item)}"'
    return f'<td class="n" {attrs}>{escape(str(value))}</td>'


def _row_head(row: dict[str, Any]) -> str:
    title = escape(TITLES.get(row["instrument"], row["instrument"]))
    suffix = " (banded)" if row["banded"] else ""
    return f'<th scope="row">{title}{suffix}</th>'


def _tr(row: dict[str, Any], cells: list[str]) -> str:
    cls = ' class="banded"' if row["banded"] else ""
    return f"<tr{cls}>{_row_head(row)}{''.join(cells)}</tr>"


def _requests_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f'<th scope="col">{MEASURE_TITLES[m]}</th>' for m in MEASURES)
    body = "".join(_tr(r, [_cell(r, m, r[m]) for m in MEASURES]) for r in rows)
    return (
        "<table id='requests-table'><caption>Requests received, permitted, refused and failed, "
        f"per instrument</caption><thead><tr><th scope='col'>Instrument</th>{head}</tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def _released_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in CATEGORIES)
    body = "".join(
        _tr(
            r,
            [
                _cell(r, "records_released", r["records_released"].get(c, WITHHELD), c)
                for c in CATEGORIES
            ],
        )
        for r in rows
    )
    return (
        "<table id='released-table'><caption>Records released, per instrument and record "
        f"category</caption><thead><tr><th scope='col'>Instrument</th>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _refusals_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"<tr>{_row_head(r)}<td>{escape(code)}</td>"
        f"{_cell(r, 'refused_by_reason', value, code)}</tr>"
        for r in rows
        for code, value in r["refusals_by_reason"].items()
    ]
    body = "".join(lines) or "<tr><td colspan='3'>No request was refused.</td></tr>"
    return (
        "<table id='refusals-table'><caption>Refusals per instrument and reason code (a "
        "refusal may have several reasons)</caption><thead><tr><th scope='col'>Instrument</th>"
        "<th scope='col'>Reason code</th><th scope='col'>Refusals</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


# --------------------------------------------------------------------------- the chart

ROW_HEIGHT: Final = 30
LABEL_WIDTH: Final = 290
BAR_WIDTH: Final = 420


def _lower(value: Figure) -> int:
    # The scale follows the exact counts and the bands' lower ends; a band's box runs on to
    # the chart's edge when its upper end is off the scale.
    if value == WITHHELD:
        return 0
    return int(value.split("-")[0]) if isinstance(value, str) else value


def _chart(rows: list[dict[str, Any]]) -> str:
    scale = max([1, *(_lower(r["requests"]) for r in rows)])
    height = ROW_HEIGHT * len(rows) + 40
    width = LABEL_WIDTH + BAR_WIDTH + 110
    parts = [
        f'<svg role="img" aria-labelledby="chart-title chart-desc" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Requests by instrument</title>',
        '<desc id="chart-desc">Horizontal bars: permitted (green), refused (red) and failed '
        "(grey) requests per instrument; a banded instrument is an outlined range. The table "
        "below gives every figure.</desc>",
    ]
    for index, row in enumerate(rows):
        y = 10 + index * ROW_HEIGHT
        label = escape(TITLES.get(row["instrument"], row["instrument"]))
        parts.append(f'<text x="0" y="{y + 17}">{label}</text>')
        parts.extend(_bars(row, y, scale))
    legend_y = height - 10
    for offset, (measure, colour) in enumerate(BAR_COLOURS.items()):
        x = LABEL_WIDTH + offset * 130
        parts.append(
            f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{legend_y}">{MEASURE_TITLES[measure].split(" (")[0]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars(row: dict[str, Any], y: int, scale: int) -> list[str]:
    if row.get("withheld"):
        return [f'<text x="{LABEL_WIDTH}" y="{y + 17}">{WITHHELD}</text>']
    if row["banded"]:
        low, high = (int(v) for v in str(row["requests"]).split("-"))
        x0 = LABEL_WIDTH + BAR_WIDTH * min(low / scale, 1)
        w = max(min(BAR_WIDTH * (high - low) / scale, LABEL_WIDTH + BAR_WIDTH - x0), 2)
        return [
            f'<rect x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" height="18" fill="none" '
            'stroke="#1b1b1b" stroke-dasharray="4 3"/>',
            f'<text x="{x0 + w + 6:.1f}" y="{y + 17}">{escape(str(row["requests"]))}</text>',
        ]
    out, x = [], float(LABEL_WIDTH)
    for measure, colour in BAR_COLOURS.items():
        w = BAR_WIDTH * int(row[measure]) / scale
        if w:
            out.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="18" fill="{colour}"/>'
            )
        x += w
    out.append(f'<text x="{x + 6:.1f}" y="{y + 17}">{int(row["requests"])}</text>')
    return out
