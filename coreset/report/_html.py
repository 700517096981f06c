"""The page: one HTML string with plotly.js, every figure, style and image
inlined (nothing loads from the network). Figures are plotly; tables and
thumbnails are plain HTML."""

from __future__ import annotations

import json
from html import escape

import numpy as np

__all__ = ["render", "MAP_ID", "GAINS_ID", "CLASSES_ID"]

MAP_ID, GAINS_ID, CLASSES_ID = "coreset-map", "coreset-gains", "coreset-classes"
_CURVE_POINTS = 2000  # steps drawn of the gain curve (evenly spaced; the knee and both ends always)
_CONFIG = {"displaylogo": False, "responsive": True}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:16px 24px}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
section{background:#fff;border:1px solid #e4e4e4;border-radius:6px;padding:4px 16px 12px;margin:12px 0}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}
th{background:#f3f3f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.9em}.kv td:first-child{font-weight:600;white-space:nowrap}
.cls{margin:10px 0;padding-top:6px;border-top:1px solid #eee}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:4px;padding:4px;background:#fcfcfc;font-size:.8em;max-width:340px}
.card img{image-rendering:pixelated;width:48px;height:48px;object-fit:contain;background:#fff}
.card img.pick{outline:3px solid #d62728}.card .m img{width:32px;height:32px;opacity:.9}
.txt{font-size:.95em}.txt .pick{font-weight:600;border-left:3px solid #d62728;padding-left:6px}
.txt .m{color:#555;margin-left:12px}nav a{margin-right:12px}
"""


def _fmt(v, digits=4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return "n/a" if v != v else f"{float(v):.{digits}g}"
    return str(v)


def _palette():
    import plotly.colors as pc

    return list(pc.qualitative.Dark24) + list(pc.qualitative.Light24)


def _class_codes(ctx):
    """class value -> colour code (largest class first)."""
    order = [c for c, _, _ in ctx["classes"]] if ctx["classes"] else []
    return {c: i for i, c in enumerate(order)}


def _colour(labels, codes, pal):
    """Marker colour settings for an array of labels (None: one colour)."""
    if labels is None or not codes:
        return {"color": pal[0]}
    P = len(pal)
    vals = np.array([codes.get(v, 0) % P for v in labels.tolist()], dtype=np.float32) + 0.5
    scale = []
    for i, c in enumerate(pal):
        scale += [[i / P, c], [(i + 1) / P, c]]
    return {"color": vals, "colorscale": scale, "cmin": 0, "cmax": P, "showscale": False}


def _map_fig(ctx):
    import plotly.graph_objects as go

    m, pal = ctx["map"], _palette()
    codes = _class_codes(ctx)
    fig = go.Figure()
    bg_text = None if m["bg_labels"] is None else [str(v) for v in m["bg_labels"].tolist()]
    fig.add_trace(go.Scattergl(
        x=m["bg_xy"][:, 0], y=m["bg_xy"][:, 1], mode="markers", name=f"rows ({len(m['bg_rows']):,} shown)",
        text=bg_text, customdata=m["bg_rows"].astype(np.float64),
        hovertemplate=("class %{text}<br>" if bg_text else "") + "row %{customdata}<extra>row</extra>",
        marker=dict(size=4, opacity=0.35, **_colour(m["bg_labels"], codes, pal))))
    w = m["pk_weights"]
    wmax = float(w.max()) if w.size and w.max() > 0 else 1.0
    # sqrt(weight) sets the area; many picks get smaller markers (they would merge into blobs, and a
    # software-rendered WebGL context spends its time filling their pixels): 5-16 px up to 5,000 picks,
    # down to 2.5-5 px without outline at 100,000
    top = float(np.clip(16 * np.sqrt(5000 / max(w.size, 1)), 5, 16))
    low = min(5.0, top / 2)
    outline = 1 if w.size <= 20_000 else 0
    size = (low + (top - low) * np.sqrt(np.clip(w, 0, None) / wmax)).astype(np.float32)
    pk_text = None if m["pk_labels"] is None else [str(v) for v in m["pk_labels"].tolist()]
    fig.add_trace(go.Scattergl(
        x=m["pk_xy"][:, 0], y=m["pk_xy"][:, 1], mode="markers", name=f"picks ({len(m['pk_rows']):,} shown)",
        text=pk_text, customdata=np.stack([m["pk_rows"].astype(np.float64), w], axis=1),
        hovertemplate=("class %{text}<br>" if pk_text else "")
        + "row %{customdata[0]}<br>weight %{customdata[1]:.4g}<extra>pick</extra>",
        marker=dict(size=size, opacity=0.9, line=dict(width=outline, color="#111"),
                    **_colour(m["pk_labels"], codes, pal))))
    if m["sus_rows"].size:
        fig.add_trace(go.Scattergl(
            x=m["sus_xy"][:, 0], y=m["sus_xy"][:, 1], mode="markers", name=f"suspects ({m['sus_rows'].size:,})",
            customdata=m["sus_rows"].astype(np.float64), hovertemplate="suspect: row %{customdata}<extra></extra>",
            marker=dict(symbol="x", size=7, color="#d62728")))
    axis = dict(showticklabels=False, zeroline=False)
    fig.update_layout(height=640, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.05),
                      xaxis=dict(title=f"{ctx['projection'].upper()} 1", **axis),
                      yaxis=dict(title=f"{ctx['projection'].upper()} 2", **axis), plot_bgcolor="#fff")
    return fig


def _gains_fig(ctx):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    g = np.asarray(ctx["gains"], dtype=np.float64)
    K = g.size
    kn = ctx["knee"]
    steps = np.unique(np.concatenate([np.linspace(0, K - 1, min(K, _CURVE_POINTS)).round().astype(np.int64),
                                      [kn["n_picks"] - 1] if kn["n_picks"] else []]).astype(np.int64))
    cum = np.cumsum(np.nan_to_num(g))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=steps + 1, y=g[steps], mode="lines", name="marginal gain",
                             line=dict(color="#1f77b4")), secondary_y=False)
    fig.add_trace(go.Scatter(x=steps + 1, y=cum[steps], mode="lines", name="objective (cumulative)",
                             line=dict(color="#2ca02c")), secondary_y=True)
    if kn["n_picks"]:
        frac = f" = {100 * kn['fraction']:.3g}% of the rows" if kn["fraction"] is not None else ""
        fig.add_vline(x=kn["n_picks"], line=dict(color="#d62728", dash="dash"),
                      annotation_text=f"knee: {kn['n_picks']:,} picks{frac}", annotation_position="top right")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12),
                      xaxis_title="picks (selection order)", plot_bgcolor="#fff")
    positive = bool(np.all(g[np.isfinite(g)] > 0))
    fig.update_yaxes(title_text="marginal gain" + (" (log)" if positive else ""), secondary_y=False,
                     type="log" if positive else "linear")
    fig.update_yaxes(title_text="objective", secondary_y=True)
    return fig


def _classes_fig(ctx):
    """Rows and picks per class, largest class first: bars for up to 60
    classes, else two lines over the class rank (cheap to draw for thousands)."""
    import plotly.graph_objects as go

    rows = ctx["classes"]
    names = [str(c) for c, _, _ in rows]
    fig = go.Figure()
    many = len(rows) > 60
    series = ([("rows", [r for _, r, _ in rows], "#6baed6")] if rows[0][1] is not None else []) + \
        [("picks", [p for _, _, p in rows], "#d62728")]
    for name, values, colour in series:
        if many:
            fig.add_trace(go.Scatter(x=np.arange(1, len(rows) + 1), y=values, mode="lines", name=name, text=names,
                                     line=dict(color=colour, shape="hvh"),
                                     hovertemplate=f"class %{{text}}: %{{y:,}} {name}<extra></extra>"))
        else:
            fig.add_trace(go.Bar(x=names, y=values, name=name, marker_color=colour,
                                 hovertemplate=f"class %{{x}}: %{{y:,}} {name}<extra></extra>"))
    fig.update_layout(height=360, barmode="group", margin=dict(l=10, r=10, t=30, b=10), yaxis_type="log",
                      xaxis_title="class rank (largest first)" if many else "class (largest first)",
                      yaxis_title="count (log)", legend=dict(orientation="h", y=1.12), plot_bgcolor="#fff",
                      xaxis=dict(type="category") if not many else {})
    return fig


def _div(fig, div_id) -> str:
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=_CONFIG)


def _kv(rows) -> str:
    return "<table class=kv>" + "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows) + \
        "</table>"


def _budget(meta) -> str:
    policy = meta.get("class_budget")
    if not policy:
        return "none: one selection over all rows (classes not balanced)"
    parts = [str(policy)]
    if policy == "tempered" and meta.get("alpha") is not None:
        parts.append(f"alpha {meta['alpha']}")
    if meta.get("min_per_class"):
        parts.append(f"at least {meta['min_per_class']} per class")
    return ", ".join(parts)


def _summary(ctx) -> str:
    meta, n, k = ctx["meta"], ctx["n_rows"], ctx["n_picks"]
    method = meta.get("method") or "?"
    if method == "submodular":
        method = f"{meta.get('objective_name')} by {meta.get('optimizer')}"
    rows = [("input", f"{meta.get('input') or ctx['source'] or 'n/a'} ({n:,} x {ctx['n_features']})"),
            ("selected", f"{k:,} of {n:,} rows ({100 * k / n:.3g}%)"),
            ("method", f"{method} (metric {meta.get('metric', 'n/a')})"),
            ("class budget", _budget(meta)),
            ("objective", _fmt(ctx["objective"], 6)),
            ("seed", _fmt(meta.get("random_state"))),
            ("input fingerprint", ctx["fingerprint"]),
            ("made by", f"coreset {meta.get('library_version', '?')}")]
    lf = meta.get("label_filter")
    if isinstance(lf, dict):
        rows.append(("label filter", ", ".join(f"{a} {lf[a]}" for a in ("method", "threshold", "n_suspects")
                                               if a in lf)))
    return _kv(rows)


def _map_note(ctx) -> str:
    m, n, k = ctx["map"], ctx["n_rows"], ctx["n_picks"]
    shown, picks = len(m["bg_rows"]), len(m["pk_rows"])
    rows = f"all {n:,} rows" if shown == n else f"{shown:,} of {n:,} rows (a seeded uniform sample)"
    pk = f"all {k:,} picks" if picks == k else f"{picks:,} of {k:,} picks (a seeded uniform sample)"
    sus = ""
    if m["n_suspects"]:
        s = m["sus_rows"].size
        sus = f"; suspects marked x: {'all ' if s == m['n_suspects'] else ''}{s:,}" + \
              ("" if s == m["n_suspects"] else f" of {m['n_suspects']:,}")
    return (f"Showing {rows}; {pk}{sus}. {ctx['projection'].upper()} of the L2-normalised embeddings; "
            "picks are sized by weight (how many rows each stands for) and coloured by class.")


def _knee_text(kn) -> str:
    if kn["n_picks"] is None:
        return f"No knee: {kn['reason']}."
    frac = f" = {100 * kn['fraction']:.3g}% of the rows" if kn["fraction"] is not None else ""
    return (f"Knee at <b>{kn['n_picks']:,} picks</b>{escape(frac)} (of the {kn['n_select']:,} selected), holding "
            f"{100 * kn['objective_share']:.3g}% of the objective: the first {kn['n_picks']:,} rows of the "
            "selection (<code>sel.indices[:n]</code>). Rule: Kneedle on the cumulative objective scaled to the unit "
            "square, the point farthest above the chord; for greedy (non-increasing) gains, the picks whose gain "
            "exceeds the selection's average gain.")


def _coverage(ctx) -> str:
    cov, names_known = ctx["coverage"], ctx["classes"] is not None and ctx["classes"][0][1] is not None
    head = ("<tr><th>class</th><th class=n>rows</th><th class=n>picks</th><th class=n>rows measured</th>"
            "<th class=n>mean similarity</th><th class=n>10th percentile</th></tr>")

    def row(t):
        return (f"<tr><td>{escape(str(t['class'] if names_known else 'all rows'))}</td><td class=n>{t['n_rows']:,}"
                f"</td><td class=n>{t['n_picks']:,}</td><td class=n>{t['n_measured']:,}</td>"
                f"<td class=n>{'no pick' if t['n_picks'] == 0 else _fmt(t['mean_similarity'], 3)}</td>"
                f"<td class=n>{'' if t['n_picks'] == 0 else _fmt(t['p10_similarity'], 3)}</td></tr>")

    first, rest = cov.table[:25], cov.table[25:1000]
    out = f"<table>{head}{''.join(row(t) for t in first)}</table>"
    if rest:
        out += (f"<details><summary>{len(rest):,} more classes</summary><table>{head}"
                f"{''.join(row(t) for t in rest)}</table></details>")
    if len(cov.table) > 1000:
        out += f"<p class=note>… and {len(cov.table) - 1000:,} more classes (not listed).</p>"
    scope = "its nearest pick of the same class" if names_known else "its nearest pick"
    sample = (f" Classes above {ctx['coverage_rows']:,} rows are measured on a seeded sample of that many rows."
              if cov.sampled else "")
    return (f"<p class=note>For each class, the mean over its rows of the cosine similarity of a row to {scope} "
            f"(1 = every row is picked or has an identical pick); worst classes first. Over all rows "
            f"(a class without picks counts 0): <b>{_fmt(cov.overall, 3)}</b>.{sample}</p>" + out)


def _thumb(show, cls="", title="") -> str:
    if show is None:
        return ""
    return f'<img class="{cls}" src="{show}" title="{escape(title)}" alt="{escape(title)}">'


def _cards(items, media) -> str:
    """Picks (or group representatives) with the rows they stand for."""
    html = []
    for it in items:
        label = f"row {it['row']}, " + (f"weight {it['weight']:.3g}" if "weight" in it else f"group of {it['size']}")
        if media == "images":
            members = "".join(_thumb(s, "", f"row {r}, similarity {sim:.3f}") for r, sim, s in it["members"])
            html.append(f'<div class=card>{_thumb(it["show"], "pick", label)} <span class=m>{members}</span>'
                        f"<div>{escape(label)}</div></div>")
        else:
            members = "".join(f"<div class=m>{escape(s)} <span class=note>(row {r}, {sim:.3f})</span></div>"
                              for r, sim, s in it["members"])
            html.append(f'<div class=txt><div class=pick>{escape(it["show"])} <span class=note>({escape(label)})'
                        f"</span></div>{members}</div>")
    return f'<div class={"cards" if media == "images" else "txts"}>{"".join(html)}</div>'


def _unpicked(rows, media) -> str:
    """Rows of a class without a pick of its own."""
    if media == "images":
        thumbs = "".join(_thumb(show, "", f"row {r}") for r, show in rows)
        return f"<div class=cards><div class=card>no pick; some of its rows: <span class=m>{thumbs}</span></div></div>"
    lines = "".join(f"<div class=m>{escape(show)} <span class=note>(row {r})</span></div>" for r, show in rows)
    return f"<div class=txts><div class=txt>no pick; some of its rows:{lines}</div></div>"


def _examples(ctx) -> str:
    ex, media = ctx["examples"], ctx["media"]
    if media is None:
        return ("<p class=note>No images or text given (<code>--images DIR</code>, <code>--text FILE --column C</code>"
                ", or <code>images=</code> / <code>text=</code>): nothing to show per row.</p>")
    out = [f"<p class=note>Per class (worst covered first; {len(ex)} of {len(ctx['coverage'].table)} classes): the "
           "picks of largest weight (outlined) and, beside each, the measured rows it stands for (rows whose nearest "
           "pick it is), most similar first.</p>"]
    for c in ex:
        name = "all rows" if c["class"] is None else f"class {c['class']}"
        out.append(f"<div class=cls><b>{escape(name)}</b> <span class=note>{c['n_rows']:,} rows, "
                   f"{c['n_picks']:,} picks, coverage {_fmt(c['mean_similarity'], 3)}</span>"
                   f"{_cards(c['cards'], media) if c['cards'] else _unpicked(c['unpicked'], media)}</div>")
    return "".join(out)


def _dups_and_suspects(ctx) -> str:
    d, s, media = ctx["duplicates"], ctx["suspects"], ctx["media"]
    out = ["<h3>Near-duplicate groups</h3>"]
    if d is None:
        out.append("<p class=note>None recorded (a <code>coreset dedup</code> selection records them).</p>")
    else:
        out.append(f"<p>{_fmt(d['n_groups'])} groups of two or more rows at similarity &ge; {_fmt(d['threshold'])}; "
                   f"{_fmt(d['n_removed'])} rows removed; largest group {_fmt(d['largest_group'])} rows.</p>")
        if d["groups"] and media is not None:
            out.append("<p class=note>The largest groups: the kept row, and measured members of its class at or "
                       "above the threshold.</p>" + _cards(d["groups"], media))
        elif d["groups"]:
            out.append("<p class=note>Largest groups (kept row: size): " + ", ".join(
                f"{g['row']}: {g['size']}" for g in d["groups"]) + "</p>")
    out.append("<h3>Suspected mislabeled rows</h3>")
    if s is None:
        out.append("<p class=note>None recorded (selections made with labels and a label filter record them).</p>")
    elif s["n"] == 0:
        out.append("<p class=note>The label filter ran and found none.</p>")
    else:
        out.append(f"<p>{s['n']:,} rows suspected mislabeled; {s['picked']:,} of them are in the selection. "
                   f"First {len(s['shown'])}:</p>")
        items = []
        for r, lab, show in s["shown"]:
            tag = f"row {r}" + ("" if lab is None else f", labelled {lab}")
            if media == "images":
                items.append(f"<div class=card>{_thumb(show, '', tag)}<div>{escape(tag)}</div></div>")
            elif media == "text":
                items.append(f"<div class=txt><div class=m>{escape(show)} <span class=note>({escape(tag)})</span>"
                             "</div></div>")
            else:
                items.append(f"<span class=note>{escape(tag)}; </span>")
        out.append(f'<div class={"cards" if media == "images" else "txts"}>{"".join(items)}</div>')
    return "".join(out)


def render(ctx) -> str:
    """The whole page (see the module doc)."""
    from plotly.offline import get_plotlyjs

    sections = [("summary", "Summary", _summary(ctx)),
                ("map", "Map of the embeddings",
                 f"<p class=note>{escape(_map_note(ctx))}</p>" + _div(_map_fig(ctx), MAP_ID))]
    if ctx["classes"]:
        note = ("Rows and picks per class, largest class first (log scale). Budget policy: "
                f"{escape(_budget(ctx['meta']))}." + ("" if ctx["classes"][0][1] is not None else
                                                      " Only the picks' labels are known (no labels for the rows)."))
        covered = sum(1 for _, _, p in ctx["classes"] if p > 0)
        sections.append(("classes", "Classes before and after selection",
                         f"<p class=note>{note} {covered:,} of {len(ctx['classes']):,} classes have a pick.</p>"
                         + _div(_classes_fig(ctx), CLASSES_ID)))
    else:
        sections.append(("classes", "Classes before and after selection",
                         "<p class=note>No labels: give <code>--labels</code> (or <code>y=</code>).</p>"))
    gains = f"<p>{_knee_text(ctx['knee'])}</p>"
    if np.isfinite(np.asarray(ctx["gains"], dtype=np.float64)).any():
        gains += _div(_gains_fig(ctx), GAINS_ID)
    sections += [("gains", "Gain curve and knee", gains),
                 ("coverage", "Per-class coverage", _coverage(ctx)),
                 ("issues", "Duplicates and suspected label errors", _dups_and_suspects(ctx)),
                 ("examples", "Picks and the rows they stand for", _examples(ctx))]
    nav = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{escape(title)}</h2>{content}</section>'
                   for sid, title, content in sections)
    info = json.dumps({"n_rows": ctx["n_rows"], "n_picks": ctx["n_picks"], "map_rows": int(len(ctx["map"]["bg_rows"])),
                       "map_picks": int(len(ctx["map"]["pk_rows"])), "knee": ctx["knee"]["n_picks"]})
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>{escape(ctx['title'])}</title><style>{CSS}</style>"
            f"<script>{get_plotlyjs()}</script></head><body><main>"
            f"<h1>{escape(ctx['title'])}</h1><nav>{nav}</nav>{body}"
            f"<script type='application/json' id='coreset-report-info'>{info}</script>"
            "</main></body></html>")
