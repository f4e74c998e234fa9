"""Command-line flags generated from declared options (``asymllic.options.option`` fields): the flag name,
type, choices, default and help of each are written once, in its declaration."""
from __future__ import annotations

import argparse
import dataclasses
import typing

from asymllic.options import RunOptions, meta, options, user_default


def help_text(f: dataclasses.Field) -> str:
    """The flag's help: the declared help, then its default (a flag that switches something on has none)."""
    text = meta(f)["help"]
    default = user_default(f)
    if default is None or default is dataclasses.MISSING or isinstance(default, bool):
        return text.replace("%", "%%")
    shown = "x".join(map(str, default)) if isinstance(default, tuple) else default
    return f"{text} (default: {shown})".replace("%", "%%")


def flags(f: dataclasses.Field) -> list:
    m = meta(f)
    return [m["flag"] or "--" + f.name.replace("_", "-"), *m["aliases"]]


def _converter(f: dataclasses.Field, hint):
    parse = meta(f)["parse"]
    if parse is not None:
        def convert(text: str):
            try:
                return parse(text)
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        convert.__name__ = f.name
        return convert
    allowed = [a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)]
    return allowed[0] if allowed and allowed[0] in (int, float, str) else str


def add_options(parser: argparse.ArgumentParser, cls, *, given_only: bool = False, positional: tuple = (),
                only: tuple | None = None, skip: tuple = ()) -> list:
    """Add a flag per option of dataclass ``cls`` (``only``/``skip`` by field name; ``positional``: fields taken
    as positional arguments). ``given_only``: a flag not given leaves no attribute (``argparse.SUPPRESS``), so
    explicit flags can override a config file; otherwise each takes its declared default. Returns the fields."""
    hints = typing.get_type_hints(cls)
    added = []
    run = {f.name for f in dataclasses.fields(RunOptions)}
    for f in sorted(options(cls), key=lambda f: f.name in run):  # how training runs: after what is run
        if (only is not None and f.name not in only) or f.name in skip:
            continue
        m, default = meta(f), user_default(f)
        if f.name in positional:
            parser.add_argument(f.name, help=help_text(f))
            added.append(f)
            continue
        kwargs: dict = {"dest": f.name, "help": help_text(f),
                        "default": argparse.SUPPRESS if given_only else default}
        if hints[f.name] is bool:
            if default and not m["flag"]:
                raise TypeError(f"{cls.__name__}.{f.name}: a flag for an option that is on by default needs a name")
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["type"] = _converter(f, hints[f.name])
            if m["choices"] is not None and m["parse"] is None:
                kwargs["choices"] = m["choices"]
            if m["metavar"]:
                kwargs["metavar"] = m["metavar"]
        if f.default is dataclasses.MISSING and not given_only:
            kwargs["required"] = True
            kwargs.pop("default")
        parser.add_argument(*flags(f), **kwargs)
        added.append(f)
    return added


def given(args: argparse.Namespace, cls) -> dict:
    """The options of ``cls`` present in ``args`` (with ``given_only``: those given on the command line)."""
    names = {f.name for f in options(cls)}
    return {k: v for k, v in vars(args).items() if k in names}
