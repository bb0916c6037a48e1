"""Command-line flags generated from a training config dataclass, and back.

Each field of the config is one flag, written once: `--<name with dashes>`,
its type from the annotation, its default from the field, its help text and
choices from the field's metadata (`flag(...)`). SageMaker's spellings and
`SM_HPS` go through the same flags (`keras_rec.training.sagemaker_job`).

| annotation | flag |
|---|---|
| `int`, `float`, `str` (or `X | None`) | `--name VALUE` |
| `bool`, default False | `--name` sets it |
| `bool`, default True | `--no-name` clears it |
| `Sequence[int]` | `--name 512,256` (`''` for none) |
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

_SCALAR_TYPES = {"int": int, "float": float, "str": str}


def flag(default: Any, help: str | None = None, choices: tuple[str, ...] | None = None):
    """A config field with its flag's help text (and choices) as metadata."""
    metadata = {"help": help, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Adds one flag per field of the dataclass `config_cls` to `parser`.

    The config's own fields come first, then those it inherits (the run
    settings), so `--help` reads model first.
    """
    inherited = {
        field.name
        for base in config_cls.__mro__[1:]
        if dataclasses.is_dataclass(base)
        for field in dataclasses.fields(base)
    }
    own = set(config_cls.__dict__.get("__annotations__", {})) - inherited
    fields = dataclasses.fields(config_cls)
    for field in sorted(fields, key=lambda f: f.name not in own):
        _add_flag(parser, field)


def config_from_args(config_cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """The `config_cls` instance of parsed flags (`overrides` replace fields)."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(config_cls)}
    values.update(overrides)
    return config_cls(**values)


def parse_ints(text: str) -> tuple[int, ...]:
    """`"256,64"` -> `(256, 64)`; `""` -> `()`."""
    try:
        return tuple(int(unit) for unit in text.split(",") if unit.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers. Received: {text!r}"
        ) from None


def _add_flag(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
    name = field.name.replace("_", "-")
    help_text = field.metadata.get("help")
    annotation = str(field.type).replace(" ", "")
    base = annotation.removesuffix("|None")
    if base == "bool":
        if field.default:
            parser.add_argument(
                f"--no-{name}", dest=field.name, action="store_false", help=help_text
            )
        else:
            parser.add_argument(f"--{name}", action="store_true", help=help_text)
        return
    if base == "Sequence[int]":
        parser.add_argument(
            f"--{name}",
            type=parse_ints,
            default=tuple(field.default),
            metavar="N,N",
            help=f"{help_text or ''} (comma-separated; '' for none; default: "
            f"{','.join(map(str, field.default))})".lstrip(),
        )
        return
    if base not in _SCALAR_TYPES:
        raise TypeError(
            f"Config field {field.name!r} has type {field.type!r}, which has no flag: "
            f"use one of {sorted(_SCALAR_TYPES)}, bool or Sequence[int]."
        )
    parser.add_argument(
        f"--{name}",
        type=_SCALAR_TYPES[base],
        default=field.default,
        choices=field.metadata.get("choices"),
        help=help_text,
    )
