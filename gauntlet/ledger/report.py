"""``gauntlet ledger``'s output: a text report, JSON, or CSV rows for reward scripts."""

from __future__ import annotations

import csv
import io
import json

from gauntlet.ledger.attribution import Credit
from gauntlet.ledger.fetch import LedgerResult

CSV_COLUMNS = [
    "window",
    "lead",
    "uid",
    "hotkey",
    "share",
    "window_improvement",
    "credit",
    "pending",
]


def as_dict(result: LedgerResult) -> dict:
    """Everything the report says, as plain JSON values."""
    att, head = result.attribution, result.chain[-1]
    checkpoint = result.checkpoint
    return {
        "head": head.link.model_dump(),
        "records": len(result.chain),
        "first_window": result.chain[0].record.window,
        "genesis": result.genesis,
        "leads": sorted({c.record.hotkey for c in result.chain}),
        "checkpoint": None
        if checkpoint is None
        else {
            "window": checkpoint.window,
            "signer": checkpoint.signer,
            "ledger_head": None
            if checkpoint.ledger_head is None
            else checkpoint.ledger_head.model_dump(),
            "model_sha256": checkpoint.model_sha256,
        },
        "model_file": None
        if result.model_record is None
        else {
            "leads_from": result.model_record.link.model_dump(),
            "model_window": result.model_record.record.window + 1,
        },
        "payloads": None
        if result.payloads is None
        else {"checked": result.payloads.checked, "not_retained": result.payloads.not_retained},
        "total_improvement": att.total_improvement,
        "attributed_improvement": att.attributed_improvement,
        "unattributed_improvement": att.unattributed_improvement,
        "pending_window": att.pending_window,
        "windows": [
            {
                "window": w.window,
                "lead": w.lead,
                "sha256": c.sha256,
                "validation_loss": w.validation_loss,
                "improvement": w.improvement,
                "contributions": [_credit(x) for x in w.credits],
            }
            for w, c in zip(att.windows, result.chain, strict=True)
        ],
        "hotkeys": [
            {
                "hotkey": t.hotkey,
                "uids": t.uids,
                "windows": [_credit(x) for x in t.credits],
                "pending": [_credit(x) for x in t.pending],
                "share_total": t.share_total,
                "improvement": t.improvement,
            }
            for t in att.hotkeys
        ],
        "notes": result.notes,
    }


def _credit(c: Credit) -> dict:
    return {
        "window": c.window,
        "uid": c.uid,
        "hotkey": c.hotkey,
        "share": c.share,
        "credit": c.credit,
    }


def as_json(result: LedgerResult) -> str:
    return json.dumps(as_dict(result), indent=2)


def as_csv(result: LedgerResult) -> str:
    """One row per contribution of every window: sum ``credit`` by hotkey for the totals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for w in result.attribution.windows:
        for c in w.credits:
            writer.writerow(
                [
                    w.window, w.lead, c.uid, c.hotkey, repr(c.share),
                    "" if w.improvement is None else repr(w.improvement),
                    "" if c.credit is None else repr(c.credit),
                    int(c.credit is None),
                ]
            )  # fmt: skip
    return out.getvalue()


def as_text(result: LedgerResult) -> str:
    att, head = result.attribution, result.chain[-1]
    first = result.chain[0].record
    origin = "the first record (genesis)" if result.genesis else f"window {first.window}"
    lines = [
        f"ledger verified: {len(result.chain)} records from {origin} to window "
        f"{head.record.window}, signed by {len({c.record.hotkey for c in result.chain})} lead(s)",
        f"head: window {head.record.window}, lead {head.record.hotkey}, sha256 {head.sha256}",
    ]
    if result.checkpoint is not None:
        ck = result.checkpoint
        checked = (
            f"model digest {ck.model_sha256[:16]}... matches the head record"
            if ck.model_sha256
            else "model file not checked"
        )
        lines.append(f"checkpoint of window {ck.window} (signed by {ck.signer}): {checked}")
    if result.model_record is not None:
        rec = result.model_record.record
        lines.append(
            f"model file: θ of window {rec.window + 1}, led to by the record of window {rec.window}"
        )
    if result.payloads is not None:
        lines.append(f"payloads: {result.payloads.checked} match their records")
    lines += ["", "window  lead          val. loss  improvement  contributions (uid: share)"]
    for w in att.windows:
        improvement = "pending" if w.improvement is None else f"{w.improvement:+.5f}"
        parts = ", ".join(f"{c.uid}: {c.share:.3f}" for c in w.credits) or "(none)"
        lines.append(
            f"{w.window:>6}  {w.lead[:12]:<12}  {w.validation_loss:>9.5f}  {improvement:>11}  {parts}"
        )
    lines += [
        "",
        "hotkey                                            uids    windows  shares   improvement  pending",
    ]
    for t in att.hotkeys:
        uids = ",".join(map(str, t.uids))
        pending = ",".join(str(c.window) for c in t.pending) or "-"
        lines.append(
            f"{t.hotkey:<48}  {uids:<6}  {len(t.credits):>7}  {t.share_total:>6.3f}  {t.improvement:>+12.5f}  {pending}"
        )
    lines += [
        "",
        f"validation loss {first.validation_loss:.5f} -> {head.record.validation_loss:.5f}: "
        f"improvement {att.total_improvement:+.5f} = attributed {att.attributed_improvement:+.5f} "
        f"+ windows without contributions {att.unattributed_improvement:+.5f}",
        f"window {att.pending_window} is pending: its improvement is measured by the next record",
    ]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
