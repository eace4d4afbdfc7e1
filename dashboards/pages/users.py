"""Users: what a reader rated, and each model's top books for them with the ratings that support
them."""

from __future__ import annotations

import dash
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboards import queries
from dashboards.components import (
    book_list,
    book_row,
    card,
    controls,
    describe_failure,
    fmt_int,
    notice,
    page,
    query_value,
    setup_page,
    stars,
    url_sync,
)
from dashboards.figures import KIND_LABELS
from dashboards.guard import as_choice, as_key, as_text, guarded
from dashboards.settings import current_settings
from shelfwise import serving

dash.register_page(__name__, path="/users", name="Users", title="Shelfwise · Users", order=4)


RATED_SHOWN = 40


def layout(user: str | None = None, kind: str | None = None, **_query: str) -> html.Div:
    """The user and model pickers and the two lists; the URL sets them (``?user=ID&kind=KIND``)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.ready or not status.recommend_kinds:
        return setup_page(status, settings.db_path)
    kind = as_choice(
        query_value(kind), status.recommend_kinds, status.default_among(status.recommend_kinds)
    )
    chosen = as_key(query_value(user))
    return page(
        "Users",
        "Pick a reader: what they rated, and the books a model would suggest next "
        "(never one they rated), "
        "each with the rated books that explain it (closest vectors, or heaviest weights).",
        controls(
            (
                "User",
                dcc.Dropdown(
                    id="usr-user",
                    value=chosen,
                    options=_user_options([chosen] if chosen else []),
                    placeholder="Type a user id…",
                    className="dd-user",
                    search_order="original",
                ),
            ),
            (
                "Model",
                dcc.RadioItems(
                    id="usr-kind",
                    options=[{"label": KIND_LABELS[k], "value": k} for k in status.recommend_kinds],
                    value=kind,
                    inline=True,
                    className="radio",
                ),
            ),
            (
                "",
                html.Button(
                    "Pick a random reader", id="usr-random", n_clicks=0, className="button"
                ),
            ),
        ),
        html.Div(
            [
                card("What they rated", html.Div(id="usr-rated")),
                card("What the model recommends", html.Div(id="usr-recs")),
            ],
            className="grid-2",
        ),
        dcc.Store(id="usr-url"),
        page_id="usr-page",
    )


def _user_options(keys: list[int], counts: dict[int, int | None] | None = None) -> list[dict]:
    counts = counts or {}
    return [
        {
            "label": f"User {k}"
            + (f" · {counts[k]:,} ratings in the matrix" if counts.get(k) else ""),
            "value": int(k),
        }
        for k in keys
    ]


def choose_user(text: str | None, _clicks: int, value: int | None, kind: str):
    """Typeahead over user ids of the model's run (most active first); the button picks at
    random."""
    settings = current_settings()
    prop = ctx.triggered[0]["prop_id"] if ctx.triggered else ""
    value = as_key(value)
    kind = as_choice(kind, queries.RECOMMEND_KINDS)
    if kind is None:
        return no_update, no_update
    text = as_text(text)
    try:
        with queries.reading(settings.db_path) as con:
            run_id = queries.latest_runs(con, (kind,)).get(kind)
            if run_id is None:
                return [], None
            if prop == "usr-random.n_clicks":
                value = queries.random_user(con, run_id)
            digits = "".join(ch for ch in (text or "") if ch.isdigit())
            found = queries.search_users(con, digits, run_id, settings.search_limit)
    except Exception as exc:
        describe_failure(exc)
        return no_update, no_update
    counts = {int(k): n for k, n in found.iter_rows()}
    keys = list(dict.fromkeys(([value] if value is not None else []) + list(counts)))
    return _user_options(keys, counts), (value if prop == "usr-random.n_clicks" else no_update)


def show_user(user_key, kind, _version):
    """What the user rated and the model's recommendations for them, with the supporting ratings."""
    user_key = as_key(user_key)
    kind = as_choice(kind, queries.RECOMMEND_KINDS)
    if kind is None:
        return no_update, notice("Choose a model.", "warn")
    if user_key is None:
        hint = notice("Choose a user above, or pick a random reader.")
        return hint, None
    settings = current_settings()
    try:
        with queries.reading(settings.db_path) as con:
            run_id = queries.latest_runs(con, (kind,)).get(kind)
            if run_id is None:
                return None, notice(f"No published {KIND_LABELS.get(kind, kind)} run.", "warn")
            rated, total = queries.user_ratings(con, run_id, user_key, RATED_SHOWN)
            in_model = queries.user_exists(con, run_id, user_key)
            recs = (
                serving.explain_for_user(con, kind, user_key, settings.recommendations)
                if in_model
                else []
            )
    except Exception as exc:
        message = notice(describe_failure(exc), "warn")
        return message, None
    if not total:
        return None, notice(f"No user {user_key} has ratings in this warehouse.", "warn")
    rated_items = [
        book_row(
            r["book_key"],
            r["title"],
            r["authors"],
            r["image_url"],
            detail=html.Span(
                stars(r["rating"]), className="stars", title=f"rated {r['rating']} of 5"
            ),
        )
        for r in rated.iter_rows(named=True)
    ]
    more = f"; the {RATED_SHOWN} highest-rated shown" if total > RATED_SHOWN else ""
    rated_block = [
        html.P(f"User {user_key} rated {fmt_int(total)} books{more}.", className="muted"),
        html.Div(book_list(rated_items, list_id="usr-rated-list"), className="scroll-y"),
    ]
    if not in_model:  # still show what they rated: it says why the model left them out
        return rated_block, notice(
            f"User {user_key} is not in {KIND_LABELS.get(kind, kind)} run #{run_id}: "
            f"{fmt_int(total)} ratings are too few to pass the matrix's filters, so there are no "
            "recommendations for them.",
            "warn",
        )
    rec_items = []
    for i, r in enumerate(recs, 1):
        because = (
            html.Span(
                [
                    "because they rated ",
                    *_join(
                        [
                            html.Span([html.I(title), f" {stars(rating)}"], className="because")
                            for title, rating in r.because
                        ]
                    ),
                ]
            )
            if r.because
            else None
        )
        rec_items.append(
            book_row(
                r.book.book_key,
                r.book.title,
                r.book.authors,
                r.book.image_url,
                rank=i,
                detail=because,
            )
        )
    recs_block = [
        html.P(
            f"Top {len(recs)} under {KIND_LABELS.get(kind, kind)} run #{run_id}, "
            "scored by the model; "
            "the reasons are the books they liked (or else rated) most cosine-similar to each.",
            className="muted",
        ),
        book_list(rec_items, list_id="usr-rec-list"),
    ]
    return rated_block, recs_block


def _join(parts: list, sep: str = "; ") -> list:
    out: list = []
    for i, p in enumerate(parts):
        if i:
            out.append(sep)
        out.append(p)
    return out


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    app.callback(
        Output("usr-user", "options"),
        Output("usr-user", "value"),
        Input("usr-user", "search_value"),
        Input("usr-random", "n_clicks"),
        State("usr-user", "value"),
        State("usr-kind", "value"),
    )(guarded(choose_user))
    app.callback(
        Output("usr-rated", "children"),
        Output("usr-recs", "children"),
        Input("usr-user", "value"),
        Input("usr-kind", "value"),
        Input("app-data-version", "data"),
    )(guarded(show_user))
    url_sync(
        app, "/users", "usr-url", [("user", "usr-user", "value"), ("kind", "usr-kind", "value")]
    )
