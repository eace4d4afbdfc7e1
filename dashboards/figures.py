"""Figure builders: pure functions from polars frames to plotly figures (no queries, no Dash)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from base.registry import REGISTRY

FONT = "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK = "#1f2933"
MUTED = "#9aa5b1"
GRID = "#e4e7eb"
ACCENT = "#d6336c"
HIGHLIGHT = "#f08c00"
MATCH = "#7048e8"
# Distinct, colour-blind-friendly categories (Okabe-Ito first, then Tableau).
CATEGORY_COLOURS = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#4E79A7",
    "#B07AA1",
    "#76B7B2",
]
# Each kind's colour and label, as the registry declares them.
KIND_COLOURS = {name: entry.colour for name, entry in REGISTRY.items()}
KIND_LABELS = {name: entry.label for name, entry in REGISTRY.items()}
COLOUR_LABELS = {
    "tag": "Top tag",
    "year": "Publication year",
    "rating": "Average rating (Goodreads)",
    "bias": "Learned book bias",
    "popularity": "Ratings in the matrix (log10)",
}
# Metrics of the Models page in display order: (metric, k or None, label, lower is better).
METRICS = (
    ("rmse", None, "RMSE", True),
    ("mae", None, "MAE", True),
    ("precision", 10, "Precision@10", False),
    ("recall", 10, "Recall@10", False),
    ("ndcg", 10, "NDCG@10", False),
    ("coverage", 10, "Catalogue coverage@10", False),
)
TOP_TAGS = 10


def style(
    fig: go.Figure,
    title: str,
    x: str | None = None,
    y: str | None = None,
    *,
    height: int | None = None,
) -> go.Figure:
    """The house look: white, left-aligned title, labelled axes, compact margins."""
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 16, "color": INK}},
        font={"family": FONT, "size": 13, "color": INK},
        margin={"l": 64, "r": 24, "t": 56, "b": 56},
        hoverlabel={"font": {"family": FONT}},
        legend={"bgcolor": "rgba(255,255,255,0.8)"},
        **({"height": height} if height else {}),
    )
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=GRID)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID)
    return fig


def message_figure(text: str, title: str = "", *, height: int | None = None) -> go.Figure:
    """An empty figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(
        text=text,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 14, "color": MUTED},
    )
    style(fig, title, height=height)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _short(text: str | None, n: int = 48) -> str:
    text = text or "(untitled)"
    return text if len(text) <= n else text[: n - 1] + "…"


def hover_labels(titles: list, authors: list) -> np.ndarray:
    """Hover text per point, as a numpy array: plotly validates arrays at once, lists item by item
    (half a second for 10,000 books)."""
    labels = [
        f"<b>{_esc(_short(t, 70))}</b><br>{_esc(_short(a, 60)) if a else ''}"
        for t, a in zip(titles, authors, strict=True)
    ]
    return np.array(labels, dtype=object)


def book_keys(part: pl.DataFrame) -> np.ndarray:
    """Book keys for ``customdata``: an object array, so plotly validates it at numpy speed yet
    sends a plain JSON list. dcc.Graph copies a clicked point's customdata from the figure as sent,
    and a numeric array would be sent base64-packed, leaving clickData without the key."""
    return part["book_key"].to_numpy().astype(object)


def _esc(text: str) -> str:
    # Plotly renders a small HTML subset in hover text: keep titles literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ----------------------------------------------------------------------------- overview


def rating_distribution(counts: pl.DataFrame) -> go.Figure:
    """Share of ratings per star value, one bar group per source (columns: source, rating, n)."""
    if counts.is_empty():
        return message_figure("No ratings loaded yet.", "Rating distribution")
    fig = go.Figure()
    for i, (source,) in enumerate(counts.select("source").unique(maintain_order=True).iter_rows()):
        part = counts.filter(pl.col("source") == source).sort("rating")
        total = part["n"].sum()
        share = (part["n"] / total * 100).to_list()
        fig.add_bar(
            x=part["rating"].to_list(),
            y=part["n"].to_list(),
            name=source,
            marker_color=CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)],
            text=[f"{s:.0f}%" for s in share],
            textposition="outside",
            cliponaxis=False,
            customdata=share,
            hovertemplate="%{x} stars: %{y:,} ratings (%{customdata:.1f}%)<extra>"
            + source
            + "</extra>",
        )
    style(fig, "Rating distribution", "Stars", "Ratings")
    fig.update_xaxes(dtick=1)
    fig.update_layout(barmode="group", showlegend=counts["source"].n_unique() > 1)
    return fig


def activity_figure(counts: pl.DataFrame, *, per: str, threshold: int | None) -> go.Figure:
    """The long tail: how many users (or books) have n ratings, log-log, with the filter's cut.

    ``counts`` has columns n and count; ``threshold`` is the transform's minimum (None: not built).
    """
    noun = "user" if per == "user" else "book"
    title = f"Ratings per {noun} (log–log)"  # noqa: RUF001 - en dash: UI typography
    if counts.is_empty():
        return message_figure("No ratings loaded yet.", title)
    n = counts["n"].to_numpy()
    c = counts["count"].to_numpy()
    fig = go.Figure()
    fig.add_scatter(
        x=n,
        y=c,
        mode="markers",
        name=f"{noun}s",
        marker={"size": 6, "color": CATEGORY_COLOURS[0], "opacity": 0.75},
        hovertemplate=f"%{{y:,}} {noun}s with %{{x:,}} ratings<extra></extra>",
    )
    style(fig, title, f"Ratings per {noun}", f"{noun.capitalize()}s")
    # Whole decades only: plotly's default log ticks label 2..9 between them, which crowd and
    # misread.
    fig.update_xaxes(type="log", dtick=1, tickformat=",d")
    fig.update_yaxes(type="log", dtick=1, tickformat=",d")
    if threshold and threshold > 1:
        cut = int(c[n < threshold].sum())
        fig.add_vrect(
            x0=max(n.min(), 1) * 0.8, x1=threshold, fillcolor=ACCENT, opacity=0.08, line_width=0
        )
        fig.add_vline(x=threshold, line={"color": ACCENT, "dash": "dash", "width": 1.5})
        fig.add_annotation(
            x=math.log10(threshold),
            y=1,
            xref="x",
            yref="paper",
            yanchor="top",
            xanchor="left",
            text=f" filter: at least {threshold:,}<br> {cut:,} {noun}s below it",
            showarrow=False,
            font={"color": ACCENT, "size": 12},
            align="left",
            bgcolor="rgba(255,255,255,0.85)",
        )
    fig.update_layout(showlegend=False)
    return fig


# ----------------------------------------------------------------------------- embeddings


def _category_traces(points: pl.DataFrame) -> list[go.Scattergl]:
    tags = points["colour"].cast(pl.String)
    top = (
        points.filter(pl.col("colour").is_not_null())
        .group_by("colour")
        .len()
        .sort(["len", "colour"], descending=[True, False])
        .head(TOP_TAGS)["colour"]
        .cast(pl.String)
        .to_list()
    )
    groups = [
        (t, tags == t, CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)], 0.8) for i, t in enumerate(top)
    ]
    groups.append(("other tags", tags.is_not_null() & ~tags.is_in(top), MUTED, 0.45))
    groups.append(("no tags", tags.is_null(), "#cbd2d9", 0.45))
    traces = []
    for name, mask, colour, opacity in groups:
        part = points.filter(mask)
        if part.is_empty():
            continue
        traces.append(
            _points_trace(
                part,
                name,
                {"color": colour, "opacity": opacity},
                detail="<br>top tag: %{fullData.name}",
            )
        )
    return traces


def _points_trace(
    part: pl.DataFrame, name: str, marker: dict, *, detail: str = "", text: np.ndarray | None = None
) -> go.Scattergl:
    """One trace of map points; ``detail`` adds a hover line (the value the points are coloured
    by)."""
    return go.Scattergl(
        x=part["x"].to_numpy(),
        y=part["y"].to_numpy(),
        mode="markers",
        name=name,
        marker={"size": 5, **marker},
        text=text,
        hovertext=hover_labels(part["title"].to_list(), part["authors"].to_list()),
        customdata=book_keys(part),
        hovertemplate="%{hovertext}" + detail + "<extra></extra>",
    )


def _continuous_traces(points: pl.DataFrame, colour: str) -> list[go.Scattergl]:
    values = points["colour"].cast(pl.Float64)
    if colour == "popularity":
        values = values.clip(lower_bound=1).log10()
    known = points.with_columns(value=values).filter(
        pl.col("value").is_not_null() & pl.col("value").is_not_nan()
    )
    unknown = points.with_columns(value=values).filter(
        pl.col("value").is_null() | pl.col("value").is_nan()
    )
    traces = []
    if not unknown.is_empty():
        traces.append(_points_trace(unknown, "unknown", {"color": "#cbd2d9", "opacity": 0.5}))
    if not known.is_empty():
        v = known["value"].to_numpy()
        # Publication years have a long tail of classics; 2-98% would spend the scale on 1800-1950.
        low_pct = 10 if colour == "year" else 2
        lo, hi = np.percentile(v, [low_pct, 98]) if len(v) > 20 else (v.min(), v.max())
        if colour == "bias":  # centred, diverging: red below average, blue above
            span = max(abs(lo), abs(hi)) or 1.0
            scale, lo, hi = "RdBu", -span, span
        else:
            scale = "Viridis"
        raw = known["colour"].cast(pl.Float64).to_numpy()
        shown = {
            "year": "{:.0f}",
            "rating": "{:.2f}",
            "bias": "{:+.3f}",
            "popularity": "{:,.0f} ratings",
        }[colour]
        label = COLOUR_LABELS[colour].removesuffix(" (log10)")
        trace = _points_trace(
            known,
            COLOUR_LABELS[colour],
            {
                "color": v,
                "colorscale": scale,
                "cmin": float(lo),
                "cmax": float(hi),
                "opacity": 0.85,
                "colorbar": {
                    "title": {"text": COLOUR_LABELS[colour], "side": "right"},
                    "thickness": 12,
                },
            },
            detail=f"<br>{label}: %{{text}}",
            text=np.array([shown.format(x) for x in raw], dtype=object),
        )
        trace.showlegend = False
        traces.append(trace)
    return traces


# The overlay traces drawn over every map, in drawing order (the chosen book on top).
OVERLAYS = ("selection", "matches", "neighbours", "chosen")


def overlay_traces(
    selection: pl.DataFrame,
    matches: pl.DataFrame,
    neighbours: pl.DataFrame,
    chosen: pl.DataFrame,
) -> list[go.Scattergl]:
    """Always exactly four traces, drawn over the map in this order: the selected books (rings),
    search matches (diamonds), the chosen book's neighbours, the chosen book (a labelled star).
    Each frame has columns book_key, x, y, title, authors (empty frames give empty traces)."""

    def trace(part: pl.DataFrame, name: str, marker: dict, labels: bool) -> go.Scattergl:
        return go.Scattergl(
            x=part["x"].to_numpy() if not part.is_empty() else [],
            y=part["y"].to_numpy() if not part.is_empty() else [],
            mode="markers+text" if labels else "markers",
            name=name,
            marker=marker,
            text=[_short(t, 36) for t in part["title"].to_list()] if labels else None,
            textposition="top center",
            textfont={"size": 13, "color": INK},
            hovertext=hover_labels(part["title"].to_list(), part["authors"].to_list()),
            customdata=book_keys(part),
            hovertemplate="%{hovertext}<extra>" + name + "</extra>",
            showlegend=not part.is_empty(),
        )

    return [
        trace(
            selection,
            f"selected ({selection.height:,})",
            {"size": 10, "color": "rgba(0,0,0,0)", "line": {"width": 1.5, "color": INK}},
            False,
        ),
        trace(
            matches,
            f"matches ({matches.height:,})",
            {"size": 9, "color": MATCH, "symbol": "diamond", "line": {"width": 1, "color": INK}},
            False,
        ),
        trace(
            neighbours,
            "neighbours",
            {"size": 11, "color": HIGHLIGHT, "line": {"width": 1.5, "color": INK}},
            False,
        ),
        trace(
            chosen,
            "chosen book",
            {"size": 18, "color": ACCENT, "symbol": "star", "line": {"width": 1.5, "color": INK}},
            True,
        ),
    ]


def embedding_map(
    points: pl.DataFrame,
    colour: str,
    *,
    total: int,
    title: str,
    selected: pl.DataFrame | None = None,
    neighbours: pl.DataFrame | None = None,
    selection: pl.DataFrame | None = None,
    matches: pl.DataFrame | None = None,
    axes: tuple[str, str] = ("Component 1", "Component 2"),
    shown_of: str = "books",
    revision: str = "",
) -> tuple[go.Figure, int]:
    """The 2-D book map, coloured by ``colour``, plus the four overlay traces at the end.

    ``points`` has columns book_key, x, y, title, authors, colour; ``total`` is how many books the
    map has in all (more than ``points.height`` when sampled). ``axes`` label x and y (custom axes
    name their poles). Returns the figure and the index of its first overlay trace (a Patch
    updates the overlays when the chosen book, the search or the selection changes).
    """
    base = _category_traces(points) if colour == "tag" else _continuous_traces(points, colour)
    empty = points.clear()

    def given(frame: pl.DataFrame | None) -> pl.DataFrame:
        return frame if frame is not None else empty

    overlays = overlay_traces(given(selection), given(matches), given(neighbours), given(selected))
    fig = go.Figure(data=[*base, *overlays])
    style(fig, f"{title} · {sample_note(points.height, total, shown_of)}", *axes, height=640)
    if colour == "tag":  # categories: the legend is the key, at the right
        legend = {"title": {"text": COLOUR_LABELS[colour]}, "x": 1.01, "xanchor": "left", "y": 1.0}
    else:  # a colour bar is the key at the right; the few legend items go above the plot
        legend = {"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"}
    fig.update_layout(
        uirevision=revision,
        hovermode="closest",
        dragmode="pan",
        legend={"itemsizing": "constant", **legend},
    )
    if colour != "tag":
        fig.update_layout(margin={"t": 88})
    custom = axes != ("Component 1", "Component 2")
    fig.update_xaxes(showticklabels=custom, zeroline=custom)
    fig.update_yaxes(showticklabels=custom, zeroline=custom, scaleanchor=None)
    return fig, len(base)


def sample_note(shown: int, total: int, what: str = "books") -> str:
    """ "20,000 of 101,455 books (sampled by popularity)", or "9,579 books" when all are shown."""
    if shown < total:
        return f"{shown:,} of {total:,} {what} (sampled by popularity)"
    return f"{total:,} {what}"


# A reader's books on a map, by what they did with them: (name, marks, colour). A mark is the
# rating "1".."5", or for an unrated book its shelf: r(ead), c(urrently-reading), t(o-read),
# o(ther).
READER_GROUPS = (
    ("you rated 4-5", "45", "#009E73"),
    ("you rated 1-3", "123", "#D55E00"),
    ("read or reading, unrated", "rc", "#0072B2"),
    ("to-read or another shelf", "to", "#56B4E9"),
)


def reader_map(
    points: pl.DataFrame,
    mine: pl.DataFrame,
    recommended: pl.DataFrame,
    *,
    total: int,
    title: str,
    revision: str = "",
) -> go.Figure:
    """A run's book map in grey with a reader's books coloured by what they did with them and the
    books recommended to them as stars.

    ``points`` has columns book_key, x, y, title, authors (the map, sampled when ``total`` is
    larger); ``mine`` the same plus ``mark`` (see READER_GROUPS); ``recommended`` book_key, x, y,
    title, authors. Every reader group and the recommendations are one trace each, named with
    their count, after the grey base.
    """
    base = _points_trace(points, "other books", {"color": "#cbd2d9", "opacity": 0.5})
    traces: list[go.Scattergl] = [base]
    for name, marks, colour in READER_GROUPS:
        part = mine.filter(pl.col("mark").is_in(list(marks)))
        trace = _points_trace(
            part,
            f"{name} ({part.height:,})",
            {"color": colour, "size": 9, "line": {"width": 1, "color": INK}},
        )
        trace.showlegend = not part.is_empty()
        traces.append(trace)
    star = _points_trace(
        recommended,
        f"recommended for you ({recommended.height:,})",
        {"color": ACCENT, "size": 16, "symbol": "star", "line": {"width": 1, "color": INK}},
    )
    star.showlegend = not recommended.is_empty()
    traces.append(star)
    fig = go.Figure(data=traces)
    style(fig, f"{title} · {sample_note(points.height, total)}", height=560)
    fig.update_layout(
        uirevision=revision,
        hovermode="closest",
        dragmode="pan",
        # The legend (up to six groups, two or three rows) goes under the map, clear of the title.
        margin={"b": 96},
        legend={
            "itemsizing": "constant",
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": -0.02,
            "yanchor": "top",
        },
    )
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False)
    return fig


def overlap_figure(distribution: pl.DataFrame, n: int, title: str) -> go.Figure:
    """How many books share 0..n of their n nearest neighbours between two runs (columns: shared,
    jaccard, books)."""
    if distribution.is_empty():
        return message_figure("The two runs have no book in common.", title)
    total = int(distribution["books"].sum())
    full = pl.DataFrame({"shared": list(range(n + 1))}).join(distribution, on="shared", how="left")
    books = full["books"].fill_null(0).to_numpy()
    jaccard = [s / (2 * n - s) for s in range(n + 1)]
    mean = float((distribution["jaccard"] * distribution["books"]).sum() / total)
    fig = go.Figure(
        go.Bar(
            x=full["shared"].to_numpy(),
            y=books,
            marker_color=CATEGORY_COLOURS[0],
            customdata=np.stack([jaccard, books / total * 100], axis=1),
            hovertemplate=(
                "%{x} of " + str(n) + " neighbours shared (Jaccard %{customdata[0]:.2f}): "
                "%{y:,} books (%{customdata[1]:.1f}%)<extra></extra>"
            ),
        )
    )
    style(
        fig,
        title,
        f"Neighbours shared, of the {n} nearest (Jaccard@{n} = shared / (2x{n} - shared))",
        "Books",
        height=380,
    )
    fig.update_xaxes(dtick=1)
    return with_subtitle(fig, f"{total:,} books in both runs; mean Jaccard@{n} {mean:.3f}")


# ----------------------------------------------------------------------------- biases


def bias_bars(books: pl.DataFrame, *, highest: bool) -> go.Figure:
    """The most positive (or negative) book biases as horizontal bars (columns: title, authors,
    bias, n_ratings)."""
    title = "Generally good: highest book bias" if highest else "Generally bad: lowest book bias"
    if books.is_empty():
        return message_figure("No books with this many ratings.", title)
    part = books.sort("bias", descending=not highest)  # plotly draws the first bar at the bottom
    labels = [
        f"{_short(t, 42)} · {_short(a, 22)}"
        for t, a in zip(part["title"].to_list(), part["authors"].to_list(), strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=part["bias"].to_list(),
            y=labels,
            orientation="h",
            marker_color="#009E73" if highest else "#D55E00",
            customdata=np.stack(
                [
                    part["n_ratings"].fill_null(0).to_numpy(),
                    part["mean_rating"].fill_null(float("nan")).to_numpy(),
                ],
                axis=1,
            ),
            hovertemplate=(
                "%{y}<br>bias %{x:+.3f} stars<br>"
                "%{customdata[0]:,} ratings, mean %{customdata[1]:.2f}<extra></extra>"
            ),
        )
    )
    style(fig, title, "Learned bias (stars)", None, height=520)
    fig.update_layout(margin={"l": 24, "r": 24, "t": 56, "b": 56})
    fig.update_yaxes(automargin=True, tickfont={"size": 12})
    return fig


def bias_scatter(books: pl.DataFrame) -> go.Figure:
    """Learned bias against the mean rating in the matrix, coloured by number of ratings."""
    title = "Book bias against average rating"
    known = books.filter(pl.col("mean_rating").is_not_null())
    if known.is_empty():
        return message_figure("No books with this many ratings.", title)
    n = known["n_ratings"].fill_null(1).clip(lower_bound=1).to_numpy()
    fig = go.Figure(
        go.Scattergl(
            x=known["mean_rating"].to_numpy(),
            y=known["bias"].to_numpy(),
            mode="markers",
            marker={
                "size": 6,
                "color": np.log10(n),
                "colorscale": "Viridis",
                "opacity": 0.75,
                "colorbar": {"title": {"text": "log10 ratings", "side": "right"}, "thickness": 12},
            },
            hovertext=hover_labels(known["title"].to_list(), known["authors"].to_list()),
            customdata=n,
            hovertemplate=(
                "%{hovertext}<br>mean %{x:.2f}, bias %{y:+.3f}, %{customdata:,} ratings"
                "<extra></extra>"
            ),
        )
    )
    style(fig, title, "Mean rating in the matrix (stars)", "Learned bias (stars)", height=460)
    return fig


def user_bias_histogram(bins: pl.DataFrame) -> go.Figure:
    """Distribution of learned user biases (columns lo, hi, count)."""
    title = "User bias distribution"
    if bins.is_empty():
        return message_figure("This model learns no user biases.", title)
    mid = ((bins["lo"] + bins["hi"]) / 2).to_numpy()
    fig = go.Figure(
        go.Bar(
            x=mid,
            y=bins["count"].to_numpy(),
            width=float((bins["hi"] - bins["lo"])[0]) * 0.95,
            marker_color=CATEGORY_COLOURS[4],
            customdata=np.stack([bins["lo"].to_numpy(), bins["hi"].to_numpy()], axis=1),
            hovertemplate=(
                "bias %{customdata[0]:+.2f} to %{customdata[1]:+.2f}: %{y:,} users<extra></extra>"
            ),
        )
    )
    fig.add_vline(x=0, line={"color": INK, "width": 1, "dash": "dot"})
    style(fig, title, "Learned user bias (stars; > 0 rates generously)", "Users", height=460)
    return fig


# ----------------------------------------------------------------------------- models


def run_label(kind: str, run_id: int) -> str:
    return f"{KIND_LABELS.get(kind, kind)} #{run_id}"


def metrics_figure(metrics: pl.DataFrame) -> go.Figure:
    """One panel per metric, one point per run, 95% bootstrap intervals as error bars.

    Points rather than bars: the axes need not start at zero, so close runs stay distinguishable.

    ``metrics`` has columns run_id, kind, metric, k, value, ci_low, ci_high (one split).
    """
    if metrics.is_empty():
        return message_figure("No metrics yet: run `shelfwise evaluate`.", "Metrics by run")
    titles = [
        f"{label} ({'lower' if lower else 'higher'} is better)" for _, _, label, lower in METRICS
    ]
    fig = make_subplots(
        rows=2, cols=3, subplot_titles=titles, vertical_spacing=0.2, horizontal_spacing=0.07
    )
    seen: set[str] = set()
    for i, (name, k, label, _) in enumerate(METRICS):
        row, col = divmod(i, 3)
        part = metrics.filter(
            (pl.col("metric") == name) & (pl.col("k").is_null() if k is None else pl.col("k") == k)
        )
        order = [
            run_label(kd, r)
            for r, kd in part.select("run_id", "kind").unique().sort(["kind", "run_id"]).iter_rows()
        ]
        if part.is_empty():
            axis = "" if i == 0 else str(i + 1)
            fig.add_annotation(
                text="not measured",
                xref=f"x{axis} domain",
                yref=f"y{axis} domain",
                x=0.5,
                y=0.5,
                showarrow=False,
                font={"color": MUTED},
            )
        for kind in part["kind"].unique(maintain_order=True).to_list():
            sub = part.filter(pl.col("kind") == kind).sort("run_id")
            value = sub["value"].to_numpy()
            lo = sub["ci_low"].fill_null(float("nan")).to_numpy()
            hi = sub["ci_high"].fill_null(float("nan")).to_numpy()
            fig.add_scatter(
                x=[run_label(kind, r) for r in sub["run_id"].to_list()],
                y=value,
                name=KIND_LABELS.get(kind, kind),
                mode="markers",
                legendgroup=kind,
                showlegend=kind not in seen,
                marker={
                    "size": 11,
                    "color": KIND_COLOURS.get(kind, MUTED),
                    "line": {"width": 1, "color": INK},
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": np.nan_to_num(hi - value),
                    "arrayminus": np.nan_to_num(value - lo),
                    "color": KIND_COLOURS.get(kind, MUTED),
                    "thickness": 2,
                    "width": 6,
                },
                customdata=np.stack([lo, hi], axis=1),
                hovertemplate=(
                    f"%{{x}}<br>{label} %{{y:.4f}}<br>"
                    "95% CI [%{customdata[0]:.4f}, %{customdata[1]:.4f}]<extra></extra>"
                ),
                row=row + 1,
                col=col + 1,
            )
            seen.add(kind)
        fig.update_xaxes(
            categoryorder="array", categoryarray=order, tickangle=-35, row=row + 1, col=col + 1
        )
        fig.update_yaxes(title_text=label, row=row + 1, col=col + 1)
    style(
        fig, "Test-split metrics by run (error bars: 95% bootstrap interval over users)", height=720
    )
    fig.update_layout(legend={"orientation": "h", "y": -0.18, "x": 0}, margin={"t": 80, "b": 110})
    fig.update_annotations(font={"size": 13})
    return fig


def with_subtitle(fig: go.Figure, text: str) -> go.Figure:
    """A second, smaller title line (which run, which filter) under the figure's title."""
    top = (fig.layout.margin.t or 56) + 20
    fig.update_layout(
        title={"subtitle": {"text": text, "font": {"size": 12, "color": "#616e7c"}}},
        margin={"t": top},
    )
    return fig
