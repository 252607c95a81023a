"""The end-of-run report: one self-contained ``index.html`` (inline CSS and SVG) and ``results.json``.

Every string that came from the run (node names, behaviours, statuses, the
scenario name) is escaped, so a hostile name cannot inject markup.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from gauntlet.localnet.results import RunResults, shares_over_windows
from gauntlet.localnet.svg import PALETTE, Layer, Series, line_chart, stacked_chart

HONEST_COLOR, ADVERSARIAL_COLOR = "#59a14f", "#e15759"

_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1000px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th { background: #f4f4f4; }
td.text, th.text { text-align: left; }
tr.adversarial td { color: #b02a2a; }
p.summary { font-size: 1.15em; font-weight: bold; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { color: #666; }
figure { margin: 1.5em 0; }
"""


def _num(value: float | int | None, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if math.isfinite(value) else str(value)


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """An HTML table; ``rows`` hold already-escaped cells, text columns are left-aligned."""
    text = {i for i, h in enumerate(headers) if h in ("name", "role", "behaviour", "status")}

    def cell(tag: str, i: int, value: str) -> str:
        return f'<{tag} class="text">{value}</{tag}>' if i in text else f"<{tag}>{value}</{tag}>"

    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        body.append(f"<tr{cls}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _meta(results: RunResults) -> str:
    m = results.meta
    items = [
        ("scenario", m.scenario),
        ("seed", "-" if m.seed is None else str(m.seed)),
        ("model", m.model or "-"),
        ("windows", f"{len(results.windows)} reported of {m.windows} asked"),
        ("block time", f"{m.block_time:g} s"),
        ("blocks per window", "-" if m.blocks_per_window is None else str(m.blocks_per_window)),
        ("started", m.started.isoformat(timespec="seconds")),
        ("finished", m.finished.isoformat(timespec="seconds") if m.finished else "-"),
        ("wall time", "-" if m.wall_seconds is None else f"{m.wall_seconds:.1f} s"),
        ("peak memory (PSS)", "-" if m.peak_rss_mib is None else f"{m.peak_rss_mib:.0f} MiB"),
    ]
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


def _nodes_table(results: RunResults) -> str:
    weights = results.final_weights()
    incentive = results.final_incentive() or {}
    last = results.windows[-1].peers if results.windows else {}
    rows, classes = [], []
    for n in results.nodes:
        budget = n.pages if n.role == "miner" else None
        rows.append(
            [
                str(n.uid),
                escape(n.name),
                escape(n.role),
                escape(n.behaviour) if n.role == "miner" else "-",
                _num(budget, "d"),
                _num(n.stake, "g"),
                escape(last[n.uid].status) if n.uid in last else "-",
                _num(weights.get(n.uid), ".4f"),
                _num(incentive.get(n.uid), ".4f"),
            ]
        )
        classes.append("adversarial" if n.role == "miner" and not n.honest else "")
    headers = ["uid", "name", "role", "behaviour", "pages", "stake", "status"]
    return _table([*headers, "final weight", "final incentive"], rows, classes)


def _windows_table(results: RunResults) -> str:
    shares = {w: (h, a) for w, h, a in shares_over_windows(results)}
    rows = [
        [
            str(w.window),
            _num(w.validation_loss_before),
            _num(w.validation_loss_after),
            str(sum(1 for p in w.peers.values() if p.status == "ok")),
            _num(shares[w.window][0] * 100, ".1f") if w.window in shares else "-",
            _num(shares[w.window][1] * 100, ".1f") if w.window in shares else "-",
        ]
        for w in results.windows
    ]
    headers = ["window", "loss before", "loss after", "ok", "honest %", "adversarial %"]
    return _table(headers, rows)


def weights_chart(results: RunResults) -> str:
    """The lead validator's weight per miner uid over windows; adversaries dashed."""
    uids = sorted({uid for w in results.windows for uid in w.peers})
    series = []
    for i, uid in enumerate(uids):
        node = results.node(uid)
        label = f"uid {uid} {node.name} ({node.behaviour})" if node else f"uid {uid}"
        points = [(float(w.window), w.peers[uid].weight) for w in results.windows if uid in w.peers]
        dashed = node is not None and not node.honest
        series.append(Series(label, points, PALETTE[i % len(PALETTE)], dashed))
    top = max((y for s in series for _, y in s.points), default=0.0)
    return line_chart(
        series,
        title="weight per uid (lead validator)",
        x_label="window",
        y_label="weight",
        y_range=(0.0, max(top * 1.05, 0.05)),
    )


def loss_chart(results: RunResults) -> str:
    """Global model validation loss before and after each window's outer step."""
    before = [(float(w.window), w.validation_loss_before) for w in results.windows]
    after = [(float(w.window), w.validation_loss_after) for w in results.windows]
    return line_chart(
        [
            Series("before outer step", before, PALETTE[0], dashed=True),
            Series("after outer step", after, PALETTE[1]),
        ],
        title="validation loss",
        x_label="window",
        y_label="loss (nats/token)",
    )


def incentive_chart(results: RunResults) -> str | None:
    """Honest vs adversarial share of the miners' chain incentive, stacked; None if never sampled."""
    shares = shares_over_windows(results)
    if not shares:
        return None
    return stacked_chart(
        [float(w) for w, _, _ in shares],
        [
            Layer("honest", [h for _, h, _ in shares], HONEST_COLOR),
            Layer("adversarial", [a for _, _, a in shares], ADVERSARIAL_COLOR),
        ],
        title="share of miner incentive",
        x_label="window",
        y_label="share",
        y_range=(0.0, 1.0),
    )


def render_html(results: RunResults) -> str:
    title = f"Gauntlet localnet: {results.meta.scenario}"
    incentive = incentive_chart(results)
    charts = [weights_chart(results), loss_chart(results)]
    figures = "".join(f"<figure>{svg}</figure>" for svg in charts)
    figures += f"<figure>{incentive}</figure>" if incentive else "<p>No incentive was sampled.</p>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="summary">{escape(results.summary_line())}</p>'
        f"{_meta(results)}"
        f"<h2>Nodes</h2>{_nodes_table(results)}"
        f"<h2>Charts</h2>{figures}"
        f"<h2>Windows</h2>{_windows_table(results)}"
        "</body></html>\n"
    )


def write_report(results: RunResults, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/results.json``; the path of index.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results.write(out_dir / "results.json")
    index = out_dir / "index.html"
    index.write_text(render_html(results), encoding="utf-8")
    return index
