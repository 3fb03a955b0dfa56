"""The report's SVG scatter of a safety boundary: valid SVG, one marker per placeable point, error bars, series
joined in the order given, and labels escaped."""
import xml.etree.ElementTree as ET

from superalign.report import pareto_plot

NS = "{http://www.w3.org/2000/svg}"
PTS = [{"x": 0.10, "y": 0.40, "x_lo": 0.05, "x_hi": 0.2, "y_lo": 0.3, "y_hi": 0.5, "label": "base", "series": "loop"},
       {"x": 0.20, "y": 0.25, "label": "r1", "series": "loop"},
       {"x": 0.30, "y": 0.10, "label": "r2", "series": "loop"},
       {"x": 0.05, "y": 0.35, "label": "<b>&static", "series": "sft <arm>"}]


def _svg(points, **kw):
    return ET.fromstring(str(pareto_plot(points, **kw)))


def test_valid_svg_with_one_marker_per_point_and_escaped_labels():
    svg = _svg(PTS)
    assert svg.tag == NS + "svg"
    assert len(svg.findall(f"{NS}circle")) == len(PTS)
    texts = [t.text for t in svg.iter(NS + "text")]
    assert "<b>&static" in texts and "sft <arm>" in texts  # parsed back: it was escaped in the markup
    raw = str(pareto_plot(PTS))
    assert "<b>" not in raw and "&lt;b&gt;&amp;static" in raw
    assert any("lower-left is better" in (t or "") for t in texts)


def test_series_joined_in_order_and_error_bars_drawn():
    svg = _svg(PTS)
    lines = svg.findall(f"{NS}polyline")
    assert len(lines) == 1  # the one-point series has nothing to join
    xs = [float(p.split(",")[0]) for p in lines[0].get("points").split()]
    assert xs == sorted(xs) and len(xs) == 3  # the order given (here: rising x)
    bars = [ln for ln in svg.findall(f"{NS}line") if ln.get("stroke") != "#999"]
    assert len(bars) == 2  # the base point's x and y intervals
    horiz = next(b for b in bars if b.get("y1") == b.get("y2"))
    assert float(horiz.get("x1")) < float(horiz.get("x2"))
    # reversed order in the input is kept: the line follows rounds, not x
    rev = _svg([dict(p) for p in PTS[2::-1]]).find(f"{NS}polyline").get("points").split()
    assert [float(p.split(",")[0]) for p in rev] == xs[::-1]


def test_points_that_cannot_be_placed_are_skipped_and_nothing_gives_empty():
    svg = _svg(PTS + [{"x": float("nan"), "y": 0.1, "label": "nan"}, {"x": None, "y": 0.2, "label": "none"}])
    assert len(svg.findall(f"{NS}circle")) == len(PTS)
    assert str(pareto_plot([])) == "" and str(pareto_plot([{"x": None, "y": None}])) == ""


def test_higher_rates_sit_higher_and_further_right():
    svg = _svg(PTS[:3])
    c = [(float(e.get("cx")), float(e.get("cy"))) for e in svg.findall(f"{NS}circle")]
    assert c[0][0] < c[1][0] < c[2][0]  # x grows to the right
    assert c[0][1] < c[1][1] < c[2][1]  # larger ASR is nearer the top (smaller SVG y)


def test_a_table_aligns_numbers_right_and_text_left_and_scrolls_in_its_own_box():
    """Every column was right-aligned, so a column of sentences (a metric's description, a candidate's settings)
    read ragged-left; and a table wider than the page scrolled the whole page sideways."""
    import re as _re
    from superalign.report import Markup, table
    h = table(["metric", "description", "value", "verdict"],
              [["a", "tells its two kinds apart", "0.800 [0.682, 0.882] (n=60)", Markup('<span class="bad">x</span>')],
               ["b", "fails to affirm", "–", Markup('<span class="good">+0.1</span>')]])
    assert h.startswith('<div class="tw"><table>') and h.endswith("</table></div>")
    heads = _re.findall(r"<th( class=\"t\")?>([^<]*)</th>", h)
    assert [name for cls, name in heads if cls] == ["metric", "description", "verdict"]
    assert '<td>0.800 [0.682, 0.882] (n=60)</td>' in h and '<td class="t">tells its two kinds apart</td>' in h
    from superalign.report import CSS
    assert "td.t" in CSS and ".tw{overflow-x:auto" in CSS


def test_provenance_names_the_seeds_of_a_run_that_saved_none(tmp_path):
    """`bench/w2s.py` writes its stores without a run config or seed list, and the report said "seed(s): None":
    it now names the seeds its metrics were measured on."""
    from superalign.report import provenance
    from superalign.store import RunStore
    st = RunStore(tmp_path / "w2s", create=True)
    rows = [{"name": "accuracy", "value": 0.7, "n": 4, "role": "w2s", "model": "x", "seed": s, "meta": {}}
            for s in (14, 13, 14)]
    st.run_stage(0, "w2s/t", lambda: {"metrics": rows}, stage="w2s")
    assert "seed(s): [13, 14]</p>" in provenance(st)
    st.put("seeds", [1, 2])
    assert "seed(s): [1, 2]</p>" in provenance(st)
    st.close()
