"""Command-line flags generated from declared options (``asymllic.options.option`` fields): the flag name,
type, choices, default and help of each are written once, in its declaration."""
from __future__ import annotations

import argparse
import dataclasses
import re
import typing

from asymllic.options import RunOptions, meta, options, user_default


def help_text(f: dataclasses.Field, default=dataclasses.MISSING) -> str:
    """The flag's help: the declared help, then its default (a flag that switches something on has none)."""
    text = meta(f)["help"]
    default = user_default(f) if default is dataclasses.MISSING else default
    if default is None or default is dataclasses.MISSING or isinstance(default, bool):
        return text.replace("%", "%%")
    if isinstance(default, tuple) and not default:
        return text.replace("%", "%%")
    shown = ("x".join(map(str, default)) if meta(f)["metavar"] == "WxH" else " ".join(map(str, default))) \
        if isinstance(default, tuple) else default
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
    if allowed and typing.get_origin(allowed[0]) is tuple:  # tuple[int, ...]: each value
        allowed = list(typing.get_args(allowed[0]))[:1]
    return allowed[0] if allowed and allowed[0] in (int, float, str) else str


def add_options(parser: argparse.ArgumentParser, cls, *, given_only: bool = False, positional: tuple = (),
                only: tuple | None = None, skip: tuple = (), required: tuple = (), defaults: dict | None = None,
                defaults_from: str | None = None) -> list:
    """Add a flag per option of dataclass ``cls`` (``only``/``skip`` by field name; ``positional``: fields taken
    as positional arguments; ``required``: options this command cannot run without; ``defaults``: this
    command's own default of an option). ``given_only``: a flag not given leaves no attribute
    (``argparse.SUPPRESS``), so explicit flags can override a config file or a study's values (named by
    ``defaults_from`` in the help); otherwise each takes its declared default. Every action made is tagged with
    its declaration (``action.declaration``: the field). Returns the fields."""
    hints = typing.get_type_hints(cls)
    defaults = defaults or {}
    added, groups = [], {}
    run = {f.name for f in dataclasses.fields(RunOptions)}
    for f in sorted(options(cls), key=lambda f: f.name in run):  # how training runs: after what is run
        if (only is not None and f.name not in only) or f.name in skip:
            continue
        m = meta(f)
        default = defaults.get(f.name, user_default(f))
        text = help_text(f, default) if defaults_from is None else \
            re.sub(r"\s*\(default:.*\)$", "", help_text(f, None), flags=re.S) + f" (default: {defaults_from})"
        tuple_of = typing.get_origin(hints[f.name]) is tuple or any(
            typing.get_origin(a) is tuple for a in typing.get_args(hints[f.name]))
        if f.name in positional:
            kwargs = {"help": text}
            if m["nargs"]:
                kwargs.update(nargs=m["nargs"], type=_converter(f, hints[f.name]))
            if m["metavar"]:
                kwargs["metavar"] = m["metavar"]
            if m["choices"] is not None:
                kwargs["choices"] = m["choices"]
            parser.add_argument(f.name, **kwargs).declaration = f
            added.append(f)
            continue
        kwargs: dict = {"dest": f.name, "help": text, "default": argparse.SUPPRESS if given_only else default}
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
            if tuple_of and m["parse"] is None:
                if m["repeat"]:
                    kwargs["action"] = "append"
                    if not given_only:
                        kwargs["default"] = None  # argparse appends to a given default list
                else:
                    kwargs["nargs"] = m["nargs"] or "+"
        if (f.default is dataclasses.MISSING and not given_only) or f.name in required:
            kwargs["required"] = True
            kwargs.pop("default", None)
        target = parser
        if m["group"] is not None:
            if m["group"] not in groups:
                groups[m["group"]] = parser.add_mutually_exclusive_group()
            target = groups[m["group"]]
        target.add_argument(*flags(f), **kwargs).declaration = f
        added.append(f)
    return added


def given(args: argparse.Namespace, cls) -> dict:
    """The options of ``cls`` present in ``args`` (with ``given_only``: those given on the command line), lists
    of values as tuples."""
    names = {f.name for f in options(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in names}
