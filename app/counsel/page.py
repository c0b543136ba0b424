"""The counsel page as one HTML document: no script, no external file, every value escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Final

from app.counsel.service import CounselView

STYLE: Final = """
body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1b1b1b;background:#fff}
h1{font-size:1.8rem}h2{font-size:1.3rem;margin-top:2.5rem}
table{border-collapse:collapse;margin:1rem 0;width:100%}
th,td{border:1px solid #8a8a8a;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.85em;word-break:break-all}
"""


def render(view: CounselView) -> str:
    """The whole page."""
    presented = [
        [
            _code(p.iss),
            _code(p.jti),
            escape(p.case or ""),
            escape(p.instrument or ""),
            "yes" if p.verified else "no",
            _code(p.paper_sha256 or "") if p.paper_sha256 else "—",
            str(p.decisions),
            str(p.permits),
            escape(p.first_seen),
            escape(p.last_seen),
        ]
        for p in view.presented
    ]
    approvals = [
        [
            _code(a["iss"]),
            _code(a["jti"]),
            escape(a["by"] or ""),
            escape(a["person"] or "—"),
            "yes" if a["verified"] else "no",
            str(a["seq"]),
            escape(a["ts"]),
        ]
        for a in view.approvals
    ]
    uses = [
        [
            _code(u["iss"]),
            _code(u["jti"]),
            str(u["uses"]),
            str(u["max_uses"]),
            escape(u["first_used_at"]),
            escape(u["last_used_at"]),
        ]
        for u in view.uses
    ]
    revoked = [
        [
            _code(r["iss"]),
            _code(r["jti"]),
            escape(r["reason"]),
            escape(r["revoked_by"]),
            escape(r["revoked_at"]),
        ]
        for r in view.revocations
    ]
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>Court orders: counsel's view</title>",
            f"<style>{STYLE}</style></head><body><main>",
            "<h1>Court orders</h1>",
            "<p>Orders as Bulwark has seen them: presented with a request (issued orders that "
            "were never presented are not known here), approved by counsel, used, revoked. "
            "No patron is named on this page.</p>",
            _table(
                "presented",
                "Orders presented",
                [
                    "Issuer",
                    "Order id",
                    "Case",
                    "Instrument",
                    "Verified",
                    "Paper SHA-256",
                    "Decisions",
                    "Released",
                    "First seen",
                    "Last seen",
                ],
                presented,
                numeric=(6, 7),
            ),
            _table(
                "approved",
                "Counsel approvals presented",
                ["Issuer", "Order id", "Approved by", "Person", "Verified", "Audit seq", "When"],
                approvals,
                numeric=(5,),
            ),
            _table(
                "used",
                "Orders used",
                ["Issuer", "Order id", "Uses", "Allowed", "First use", "Last use"],
                uses,
                numeric=(2, 3),
            ),
            _table(
                "revoked",
                "Orders revoked",
                ["Issuer", "Order id", "Reason", "By", "When"],
                revoked,
            ),
            f"<p><small>Generated {escape(view.generated_at)}. To revoke: "
            "<code>POST /v1/orders/revocations</code> or <code>bulwark orders revoke</code>."
            "</small></p>",
            "</main></body></html>",
        ]
    )


def _code(value: str) -> str:
    return f"<code>{escape(value)}</code>"


def _table(
    anchor: str,
    title: str,
    headings: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: tuple[int, ...] = (),
) -> str:
    body = [
        "<tr>"
        + "".join(
            f"<td class='n'>{cell}</td>" if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    ]
    if not body:
        body = [f"<tr><td colspan='{len(headings)}'>None yet.</td></tr>"]
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in headings)
    return (
        f"<h2 id='{anchor}'>{escape(title)}</h2>"
        f"<table data-list='{anchor}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
