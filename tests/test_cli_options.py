"""CLI defaults come from the typed config: one source of truth, checked option by option."""

from __future__ import annotations

import dataclasses

import click
import pytest

from base.config import EvalConfig, LoadConfig, PublishConfig, TransformConfig, TuneConfig
from base.registry import PREFERRED, REGISTRY, fittable, kinds
from shelfwise.cli import cli
from shelfwise.cli.options import ConfigOption


def commands(group: click.Group = cli, prefix: str = "") -> dict[str, click.Command]:
    out = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out |= commands(command, f"{prefix}{name} ")
        else:
            out[f"{prefix}{name}"] = command
    return out


def config_options() -> list[tuple[str, ConfigOption]]:
    return [
        (name, p)
        for name, command in commands().items()
        for p in command.params
        if isinstance(p, ConfigOption)
    ]


@pytest.mark.parametrize("where,option", config_options(), ids=lambda v: getattr(v, "name", v))
def test_a_config_option_defaults_to_its_field(where, option):
    config, name = option.field
    assert option.name == name
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    assert option.default == field.default, f"{where} --{name}"


def test_every_config_field_a_command_takes_is_a_config_option():
    """A command option named like a config field of the command's step must be bound to it."""
    steps = {
        "transform": TransformConfig,
        "load": LoadConfig,
        "fit": PublishConfig,
        "tune": TuneConfig,
        "evaluate": EvalConfig,
    }
    for command_name, config in steps.items():
        command = commands()[command_name]
        fields = {f.name for f in dataclasses.fields(config)} - {"source", "directory"}
        bound = {p.name for p in command.params if isinstance(p, ConfigOption)}
        named = {p.name for p in command.params}
        assert fields & named <= bound, (command_name, (fields & named) - bound)
        if command_name != "load":
            assert fields <= bound, (command_name, fields - bound)


def test_kind_choices_come_from_the_registry():
    by_name = commands()
    choice = {
        name: next(p for p in by_name[name].params if p.name in ("kind", "kinds")).type.choices
        for name in ("fit", "tune", "similar", "recommend", "digest")
    }
    assert list(choice["fit"]) == list(choice["tune"]) == list(fittable())
    assert list(choice["recommend"]) == list(fittable())
    assert list(choice["similar"]) == list(kinds(neighbours=True))
    # A reader's digest folds them into any kind; a favourites digest checks its kind itself.
    assert list(choice["digest"]) == list(fittable())
    # No fixed default: the best published kind for the task answers (base.registry.PREFERRED).
    for name in ("similar", "recommend", "digest"):
        model = next(p for p in by_name[name].params if p.name == "kind")
        assert model.default is None
    refresh_kinds = next(p for p in by_name["refresh"].params if p.name == "kinds")
    assert [k.strip() for k in refresh_kinds.default.split(",")] == list(kinds(default=True))


def test_every_kind_that_can_do_a_task_is_in_its_preference_order():
    able = {
        "ratings": {k for k, e in REGISTRY.items() if e.predicts_ratings and not e.yardstick},
        "ranking": {k for k, e in REGISTRY.items() if e.ranks and not e.yardstick},
        "neighbours": set(kinds(neighbours=True)),
    }
    for task, order in PREFERRED.items():
        assert len(order) == len(set(order)), task
        assert set(order) == able[task], task
