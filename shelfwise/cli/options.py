"""Options shared by commands, with defaults read from the typed config (never a second copy)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from base.config import DEFAULT_DB, SOURCES, TransformConfig
from base.errors import ParamError, ShelfwiseError
from base.params import parse_value
from base.registry import param_defaults

DB_OPTION = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_DB,
    show_default=True,
    envvar="SHELFWISE_DB",
    show_envvar=True,
    help="Warehouse file.",
)


def default_of(config: type, name: str) -> Any:
    """The default of field ``name`` of the config dataclass ``config``."""
    for f in dataclasses.fields(config):
        if f.name == name:
            return f.default
    raise KeyError(f"{config.__name__} has no field {name}")


class ConfigOption(click.Option):
    """An option standing for one field of a config dataclass (``field``: (class, name))."""

    def __init__(self, *args: Any, field: tuple[type, str], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.field = field


def config_option(config: type, name: str, *decls: str, **kw: Any) -> Callable:
    """A click option whose default is the config dataclass's own default for ``name``.

    The option's parameter name is the field's name, so a command can build the config with
    ``config(**values)``; a test checks every such option against its field.
    """
    decls = decls or (f"--{name.replace('_', '-')}",)
    return click.option(
        *decls,
        name,
        cls=ConfigOption,
        field=(config, name),
        default=default_of(config, name),
        **kw,
    )


def transform_options(f: Callable) -> Callable:
    """The matrix build's options: one per TransformConfig field, its defaults."""
    options = [
        config_option(
            TransformConfig,
            "source",
            type=click.Choice(SOURCES),
            help="Which source's matrix to build.",
        ),
        config_option(
            TransformConfig,
            "min_user_ratings",
            type=click.IntRange(min=1),
            help="Keep users with at least this many ratings.",
        ),
        config_option(
            TransformConfig,
            "min_book_ratings",
            type=click.IntRange(min=1),
            help="Keep books with at least this many ratings.",
        ),
        config_option(
            TransformConfig,
            "kcore",
            "--kcore/--no-kcore",
            help="Repeat both filters until nothing changes.",
        ),
        config_option(
            TransformConfig,
            "test_fraction",
            type=click.FloatRange(0, 1, max_open=True),
            help="Share of ratings held out for testing.",
        ),
        config_option(
            TransformConfig,
            "split",
            type=click.Choice(["random", "temporal"]),
            help="random: seeded hash per rating; temporal: each user's latest ratings.",
        ),
        config_option(TransformConfig, "seed", type=int, help="Seed of the random split."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def kind_overrides(kind: str, options: tuple[str, ...], flag: str = "--param") -> dict[str, Any]:
    """``NAME=VALUE`` pairs, typed like the kind's defaults (``factors=abc`` is an error)."""
    defaults = param_defaults(kind)
    out: dict[str, Any] = {}
    for item in options:
        name, sep, value = item.partition("=")
        if not sep or name not in defaults:
            raise ShelfwiseError(
                f"{flag} {item!r}: expected NAME=VALUE with NAME one of "
                f"{', '.join(defaults) or '(none: ' + kind + ' has no parameters)'}"
            )
        try:
            out[name] = parse_value(name, value, defaults[name])
        except ParamError as exc:
            raise ShelfwiseError(f"{flag} {item!r}: {exc}") from exc
    return out
