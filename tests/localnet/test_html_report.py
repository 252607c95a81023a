"""The end-of-run HTML report: self-contained, escaped, with well-formed SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

from localnet_helpers import peer, report, small_run

from gauntlet.localnet.html_report import render_html, write_report
from gauntlet.localnet.results import RunResults
from gauntlet.localnet.svg import Layer, Series, line_chart, nice_ticks, stacked_chart

SVG_NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&'


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


def _texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG_NS}text")]


def test_write_report_writes_index_html_and_results_json(tmp_path: Path) -> None:
    results = small_run()
    index = write_report(results, tmp_path / "report")
    assert index == tmp_path / "report" / "index.html"
    assert RunResults.load(tmp_path / "report" / "results.json") == results
    html = index.read_text()
    assert escape(results.summary_line()) in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_the_whole_page_is_well_formed_markup() -> None:
    ET.fromstring(render_html(small_run()).split("\n", 1)[1])  # after <!DOCTYPE html>


def test_a_hostile_node_name_is_escaped_everywhere() -> None:
    results = small_run()
    results.add_node(HOSTILE, 4, "miner", '"><b>copycat</b>')
    results.meta.scenario = "<i>scenario</i>"
    html = render_html(results)
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html
    ET.fromstring(html.split("\n", 1)[1])
    legend = [t for svg in _svgs(html) for t in _texts(svg)]
    assert any(HOSTILE in t for t in legend)  # the parsed text is the name, unharmed


def test_the_page_has_weight_loss_and_incentive_charts() -> None:
    svgs = _svgs(render_html(small_run()))
    assert len(svgs) == 3
    weights, loss, incentive = svgs
    assert "uid 4 miner4 (copycat)" in _texts(weights)
    assert "uid 1 miner1 (honest)" in _texts(weights)
    assert len(list(weights.iter(f"{SVG_NS}polyline"))) >= 4  # axes + one line per uid
    assert "validation loss" in _texts(loss)
    assert {"honest", "adversarial"} <= set(_texts(incentive))
    assert len(list(incentive.iter(f"{SVG_NS}polygon"))) == 2


def test_adversaries_are_drawn_dashed_in_the_weight_chart() -> None:
    weights = _svgs(render_html(small_run()))[0]
    dashed = [p for p in weights.iter(f"{SVG_NS}polyline") if p.get("stroke-dasharray") is not None]
    assert len(dashed) == 1


def test_the_node_table_lists_final_weight_and_incentive() -> None:
    html = render_html(small_run())
    row = re.search(r"<tr[^>]*><td>3</td>.*?</tr>", html)
    assert row is not None
    assert "miner3" in row.group() and "0.5000" in row.group() and "0.4000" in row.group()
    assert '<tr class="adversarial"><td>4</td>' in html


def test_a_run_without_incentive_says_so_instead_of_a_chart() -> None:
    results = RunResults()
    results.add_node("miner1", 1, "miner")
    results.add_report(report(0, 5.0, 4.9, [peer(1, 1.0)]))
    html = render_html(results)
    assert len(_svgs(html)) == 2
    assert "No incentive was sampled." in html


def test_an_empty_run_still_renders() -> None:
    html = render_html(RunResults())
    assert len(_svgs(html)) == 2


def test_single_points_and_nan_values_make_valid_charts() -> None:
    svg = line_chart(
        [Series("a", [(3.0, 1.0)]), Series("b", [(3.0, float("nan"))])],
        title="t",
        x_label="x",
        y_label="y",
    )
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{SVG_NS}circle"))) == 1
    assert "nan" not in svg.lower()
    ET.fromstring(
        stacked_chart(
            [2.0], [Layer("h", [0.5]), Layer("a", [0.5])], title="t", x_label="x", y_label="y"
        )
    )


def test_ticks_are_round_numbers_inside_the_range() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.05, 0.93) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(2.0, 9.0, integer=True) == [2.0, 4.0, 6.0, 8.0]
    assert nice_ticks(3.0, 4.0, integer=True) == [3.0, 4.0]
