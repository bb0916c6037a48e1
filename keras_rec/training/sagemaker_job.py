"""SageMaker training conventions for the training scripts: hyperparameters, paths, roles.

A SageMaker training job passes hyperparameters both as command-line
arguments (`--key value`, keys spelled as given, so `--batch_size 32` for a
parser that knows `--batch-size`) and as the JSON object `SM_HPS`; it names
the directory whose contents become `model.tar.gz` in `SM_MODEL_DIR` and each
input channel's directory in `SM_CHANNEL_<NAME>`. Distributed jobs describe
the cluster in `TF_CONFIG` (`keras_rec.training.tf_config`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Sequence
from typing import Any

from keras_rec.training.tf_config import is_chief, json_env

# Added to SM_HPS by SageMaker itself, not by the user: the TensorFlow
# estimator's `model_dir` (an S3 checkpoint prefix) and `sagemaker_*` keys.
_SAGEMAKER_KEYS = frozenset({"model_dir"})
_SAGEMAKER_PREFIX = "sagemaker_"
_ENV_PATHS = (("--output-dir", "SM_MODEL_DIR"), ("--data", "SM_CHANNEL_TRAINING"))
_BOOL_STRINGS = {"true": True, "false": False}
_ACCUMULATING = (argparse._AppendAction, argparse._CountAction)


def parse_training_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parses a training script's arguments the way a SageMaker job passes them.

    Precedence, highest first: arguments on the command line; hyperparameters
    from `SM_HPS`; for `--output-dir`, `SM_MODEL_DIR`, and for `--data`,
    `SM_CHANNEL_TRAINING`; the parser's defaults.

    SageMaker passes the hyperparameters the user set on the command line
    too, keys as spelled: `--batch_size` is read as `--batch-size`. Anything
    else the parser does not know stops the run before any work, as argparse
    does (exit status 2), naming the argument and the closest known flag:
    a misspelt flag must not train a model of the wrong settings.
    Abbreviations (`--epoch` for `--epochs`) are not accepted either.

    `SM_HPS` keys match an option's dest or long option, with `-` and `_`
    interchangeable (`batch-size`, `batch_size`). Values go through the
    option's `type` and `choices` as command-line strings would; for a
    `store_true`/`store_false` flag, `true`/`false` (JSON or strings) say
    whether the flag is given. SageMaker's own keys (`model_dir`,
    `sagemaker_*`) are ignored unless the parser has them.

    Args:
        parser: argparse.ArgumentParser. The script's parser. It is not
            modified.
        argv: list of str, optional. The arguments (default: `sys.argv[1:]`).

    Returns:
        The namespace.

    Raises:
        SystemExit: status 2, on an argument the parser does not know
            (through `parser.error`).
        ValueError: `SM_HPS` names a hyperparameter the parser does not know.

    Example:

    >>> parser = argparse.ArgumentParser()
    >>> parser.add_argument("--epochs", type=int, default=1)
    >>> parser.add_argument("--output-dir", default="out")
    >>> # SM_HPS='{"epochs": 3}', SM_MODEL_DIR=/opt/ml/model
    >>> args = keras_rec.training.sagemaker_job.parse_training_args(parser, [])
    >>> args.epochs, args.output_dir
    (3, '/opt/ml/model')
    """
    if not isinstance(parser, argparse.ArgumentParser):
        raise TypeError(
            f"`parser` must be an argparse.ArgumentParser. Received: parser={type(parser).__name__}"
        )
    argv = sys.argv[1:] if argv is None else list(argv)
    options = _options(parser)
    argv = _dashed_spellings(argv, options)
    defaults: dict[str, Any] = {}
    for option, variable in _ENV_PATHS:
        action = parser._option_string_actions.get(option)
        if action is not None and os.environ.get(variable):
            defaults[action.dest] = _convert_one(action, variable, os.environ[variable])
    defaults.update(_hyperparameter_defaults(options))

    # An append action adds command-line values to whatever the namespace holds:
    # give it its hyperparameter value only if the command line gave none.
    actions = {action.dest: action for action, _ in options.values()}
    late = {
        dest: defaults.pop(dest)
        for dest in list(defaults)
        if dest in actions and isinstance(actions[dest], _ACCUMULATING)
    }
    # Values from the environment satisfy required options.
    relaxed = [
        action
        for action in parser._actions
        if action.required and (action.dest in defaults or action.dest in late)
    ]
    allow_abbrev = parser.allow_abbrev
    try:
        for action in relaxed:
            action.required = False
        parser.allow_abbrev = False
        namespace, unknown = parser.parse_known_args(argv, argparse.Namespace(**defaults))
    finally:
        parser.allow_abbrev = allow_abbrev
        for action in relaxed:
            action.required = True
    if unknown:
        parser.error(unknown_arguments_message(unknown, options))
    for dest, value in late.items():
        if getattr(namespace, dest, None) is actions[dest].default:
            setattr(namespace, dest, value)
    return namespace


def unknown_arguments_message(
    unknown: Sequence[str], options: dict[str, tuple[argparse.Action, str | None]]
) -> str:
    """`unrecognized arguments: ...`, with the closest known flag of each unknown one."""
    flags = sorted({option for _, option in options.values() if option})
    hints = []
    for argument in unknown:
        if not argument.startswith("--"):
            continue
        name = argument.split("=", 1)[0]
        close = difflib.get_close_matches(name.replace("_", "-"), flags, n=1, cutoff=0.6)
        if close:
            hints.append(f"{name}: did you mean {close[0]}?")
    message = f"unrecognized arguments: {' '.join(unknown)}"
    return f"{message} ({'; '.join(hints)})" if hints else message


def _dashed_spellings(
    argv: list[str], options: dict[str, tuple[argparse.Action, str | None]]
) -> list[str]:
    """`--batch_size 32` / `--batch_size=32` -> `--batch-size ...` for known options."""
    spelled = []
    for index, argument in enumerate(argv):
        if argument == "--":
            return spelled + argv[index:]
        name, equals, value = argument.partition("=")
        if name.startswith("--") and "_" in name:
            known = options.get(_normalize(name))
            if known is not None and known[1] is not None:
                argument = known[1] + equals + value
        spelled.append(argument)
    return spelled


def sagemaker_settings() -> dict[str, Any]:
    """Summarizes the SageMaker training environment found in `SM_*` variables.

    Returns:
        A dict: `on_sagemaker` (whether any `SM_*` variable is set),
        `model_dir`, `output_data_dir`, `channels` (`{name: directory}`),
        `hyperparameters` (`SM_HPS`), `current_host`, `hosts`, `num_gpus`,
        `num_cpus`, `is_chief` and `variables` (the `SM_*` names found).

    Example:

    >>> keras_rec.training.sagemaker_job.sagemaker_settings()["channels"]
    {'training': '/opt/ml/input/data/training'}
    """
    variables = sorted(name for name in os.environ if name.startswith("SM_"))
    channels = {
        name[len("SM_CHANNEL_") :].lower(): os.environ[name]
        for name in variables
        if name.startswith("SM_CHANNEL_") and os.environ[name]
    }
    return {
        "on_sagemaker": bool(variables),
        "model_dir": os.environ.get("SM_MODEL_DIR"),
        "output_data_dir": os.environ.get("SM_OUTPUT_DATA_DIR"),
        "channels": channels,
        "hyperparameters": json_env("SM_HPS", dict) or {},
        "current_host": os.environ.get("SM_CURRENT_HOST"),
        "hosts": json_env("SM_HOSTS", list) or [],
        "num_gpus": _int_env("SM_NUM_GPUS"),
        "num_cpus": _int_env("SM_NUM_CPUS"),
        "is_chief": is_chief(),
        "variables": variables,
    }


def _int_env(variable: str) -> int | None:
    text = os.environ.get(variable, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"`{variable}` must be an integer. Received: {variable}={text!r}"
        ) from None


def _options(
    parser: argparse.ArgumentParser,
) -> dict[str, tuple[argparse.Action, str | None]]:
    """Maps each normalized key to its optional action and the option it spells.

    The spelled option is `None` when the key is the dest alone.
    """
    options: dict[str, tuple[argparse.Action, str | None]] = {}
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        options.setdefault(_normalize(action.dest), (action, None))
        for option in action.option_strings:
            if option.startswith("--"):
                options[_normalize(option)] = (action, option)
    return options


def _normalize(key: str) -> str:
    return key.lstrip("-").replace("-", "_")


def _hyperparameter_defaults(
    options: dict[str, tuple[argparse.Action, str | None]],
) -> dict[str, Any]:
    hyperparameters = json_env("SM_HPS", dict) or {}
    values: dict[str, Any] = {}
    unknown = []
    for key, value in hyperparameters.items():
        normalized = _normalize(key)
        if normalized not in options:
            if normalized not in _SAGEMAKER_KEYS and not normalized.startswith(_SAGEMAKER_PREFIX):
                unknown.append(key)
            continue
        action, option = options[normalized]
        values[action.dest] = _convert(action, option, f"SM_HPS[{key!r}]", value)
    if unknown:
        known = sorted({action.dest for action, _ in options.values()})
        hints = []
        for key in sorted(unknown):
            close = difflib.get_close_matches(_normalize(key), known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{key!r}: did you mean {close[0]!r}?")
        raise ValueError(
            f"`SM_HPS` holds hyperparameters the parser does not know: {sorted(unknown)}"
            + (f" ({'; '.join(hints)})" if hints else "")
            + f". Known: {known}."
        )
    return values


def _convert(action: argparse.Action, option: str | None, label: str, value: Any) -> Any:
    """Converts one SM_HPS value as the command line would convert it."""
    flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
    if flag or isinstance(action, argparse.BooleanOptionalAction):
        given = _to_bool(label, value)
        if option is None:  # The key is the dest: the value is the value.
            return given
        if isinstance(action, argparse.BooleanOptionalAction):
            return given != option.startswith("--no-")
        return action.const if given else action.default
    if isinstance(action, argparse._CountAction):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"`{label}` must be a count. Received: {value!r}")
        return _convert_one(action, label, value, converter=int)
    if isinstance(action, argparse._StoreConstAction) or action.nargs == 0:
        raise ValueError(
            f"`{label}` sets {action.dest!r}, an option that takes no value: it cannot "
            f"come from SM_HPS. Received: {value!r}"
        )
    many = isinstance(action, argparse._AppendAction) or action.nargs not in (None, "?")
    if many:
        items = value if isinstance(value, list) else [value]
        return [_convert_one(action, label, item) for item in items]
    return _convert_one(action, label, value)


def _convert_one(action: argparse.Action, label: str, value: Any, converter: Any = None) -> Any:
    """Converts one value through the action's `type` and checks its `choices`."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise ValueError(f"`{label}` must be a string, number or boolean. Received: {value!r}")
    if converter is None:
        converter = action.type if callable(action.type) else str
    try:
        converted = converter(text)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
        name = getattr(converter, "__name__", repr(converter))
        raise ValueError(
            f"`{label}` must be a valid {name} for {action.dest!r} ({error}). Received: {value!r}"
        ) from None
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"`{label}` must be one of {list(action.choices)}. Received: {value!r}")
    return converted


def _to_bool(label: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_STRINGS:
        return _BOOL_STRINGS[value.strip().lower()]
    raise ValueError(f"`{label}` is a flag: it must be true or false. Received: {value!r}")
