"""Config dataclasses as command lines: a field with a help text, and one --flag per field.

Used by every job with a config dataclass (the default-model recipe, RED-PPO training), so each
setting is written once: its default and help live on the field, and `--help` shows both.

Why not `transformers.HfArgumentParser` (which reads the same `metadata={"help": ...}`): it cannot
keep a field off the command line (`cli=False`, e.g. the recipe's prompt tuple), it parses tuples
as strings, and it has no way to leave unset flags out of the namespace, which the recipe needs so
that `--tiny` presets fill only what the user did not give. This helper is 40 lines and does all
three; the flags it makes (`--actor-lr`, `--no-resume`) are the ones HfArgumentParser would make.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

_TYPES = {"int": int, "float": float, "int | None": int, "float | None": float}


def option(default, help: str, **meta):
    """A dataclass field with a help text. meta: `choices=[...]`, or `cli=False` to keep it off the command line."""
    if isinstance(default, (list, dict, set)):  # each instance gets its own copy, never the shared default
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help, **meta})
    return dataclasses.field(default=default, metadata={"help": help, **meta})


def add_dataclass_args(parser: argparse.ArgumentParser, cls, *, suppress_defaults: bool = False):
    """One --flag per field of `cls` (bools get --flag / --no-flag). With suppress_defaults, flags
    not given are left out of the parsed namespace, so the dataclass (or a preset) fills them."""
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{f.name}: a command-line field needs a default (use option(default, help))")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = f"{f.metadata['help']} (default: {shown})".replace("%", "%%")  # argparse %-formats help
        value = argparse.SUPPRESS if suppress_defaults else default
        if f.type in ("bool", bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=value, help=text)
        else:
            kw = {"choices": f.metadata["choices"]} if "choices" in f.metadata else {}
            parser.add_argument(flag, dest=f.name, type=_TYPES.get(str(f.type), str), default=value, help=text, **kw)
    return parser
