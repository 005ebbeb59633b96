"""docs/cli.md's command reference, generated from the commands' own click definitions.

The document is a hand-written preamble (conventions, exit status, the data root, durations,
examples) followed by a marker line and the generated reference: one section per command of
`astra.cli.main.COMMANDS`, with its usage, its help text and a table of its arguments and
options.  Regenerating keeps everything above the marker as it is.

    uv run python -m astra.cli.reference --write     # rewrite docs/cli.md
    uv run python -m astra.cli.reference --check     # exit 1 when docs/cli.md is not current

A command whose module does not import (yet) is listed by name and summary, not skipped, and
the generator does not fail because of it.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import click

MARKER = ("<!-- The reference below is generated from the commands' definitions by "
          "`uv run python -m astra.cli.reference --write`: edit their help, not this. -->")
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
COMMAND_TO_RUN = "uv run python -m astra.cli.reference --write"

_TYPES = {"integer": "integer", "float": "number", "text": "text", "boolean": "flag", "path": "path",
          "directory": "path", "file": "path", "filename": "path", "duration": "duration", "timestamp": "time"}


def load_command(module: str, attr: str) -> tuple[click.Command | None, str | None]:
    """The click command, or None and why it cannot be loaded (never an exception)."""
    try:
        return getattr(importlib.import_module(module), attr), None
    except Exception as err:  # a module under construction must not stop the reference
        return None, f"{type(err).__name__}: {err}"


def _cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _help(cmd: click.Command) -> str:
    """A command's help text as Markdown paragraphs (click's `\\b` and `\\f` markers honoured)."""
    text = (cmd.help or "").split("\f")[0]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    out = []
    for p in paragraphs:
        if p.startswith("\b"):  # click's "do not rewrap": keep the lines
            out.append("\n".join(line.rstrip() + "  " for line in p[1:].strip("\n").splitlines()).rstrip())
        else:
            out.append(" ".join(p.split()))
    return "\n\n".join(out)


def _kind(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag and not param.secondary_opts:
        return "flag"
    t = param.type
    if isinstance(t, click.Choice):
        return " \\| ".join(f"`{c}`" for c in t.choices)
    if isinstance(t, click.IntRange | click.FloatRange):
        return f"{'integer' if isinstance(t, click.IntRange) else 'number'} ({t._describe_range()})"
    name = getattr(t, "name", "") or type(t).__name__
    return _TYPES.get(name.lower(), name.lower())


def _default(param: click.Parameter, ctx: click.Context) -> str:
    if param.required:
        return "required"
    if isinstance(param, click.Option) and param.is_flag and not param.secondary_opts:
        return ""
    default = param.get_default(ctx, call=False)
    if callable(default) or default in (None, (), False) or type(default).__name__ == "Sentinel":  # click's UNSET
        return ""
    if isinstance(param, click.Option) and param.show_default not in (None, True, False):
        return _cell(param.show_default)
    return f"`{default}`"


def _param_rows(cmd: click.Command, ctx: click.Context) -> tuple[list[str], list[str]]:
    """(argument rows, option rows) of a command's table."""
    args, opts = [], []
    for param in cmd.get_params(ctx):
        many = ", repeatable" if param.multiple or param.nargs == -1 else ""
        if isinstance(param, click.Argument):
            word = param.make_metavar(ctx) if _takes_ctx(param.make_metavar) else param.make_metavar()
            args.append(f"| `{word}` | {_kind(param)}{many} | {_default(param, ctx) or 'optional'} | |")
            continue
        if not isinstance(param, click.Option) or param.hidden or "--help" in param.opts:
            continue
        names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        text = param.help or ""
        if param.envvar and str(param.envvar) not in text:
            text += f" Environment variable: `{param.envvar}`."
        opts.append(f"| {names} | {_kind(param)}{many} | {_default(param, ctx)} | {_cell(text)} |")
    return args, opts


def _takes_ctx(method) -> bool:
    import inspect

    return "ctx" in inspect.signature(method).parameters


def command_section(name: str, summary: str, cmd: click.Command | None, why: str | None,
                    parent: click.Context) -> str:
    """One command's section of the reference."""
    lines = [f"### `astra {name}`", ""]
    if cmd is None:
        lines += [f"{summary}", "", f"(Its options are listed once its module imports: {_cell(why or '')}.)"]
        return "\n".join(lines)
    ctx = click.Context(cmd, info_name=name, parent=parent)
    pieces = " ".join(cmd.collect_usage_pieces(ctx))
    lines += [f"`astra {name} {pieces}`".rstrip("` ") + "`", ""]
    help_text = _help(cmd)
    if help_text:
        lines += [help_text, ""]
    args, opts = _param_rows(cmd, ctx)
    if args or opts:
        lines += ["| argument or option | value | default | |", "|---|---|---|---|", *args, *opts]
    else:
        lines.append("No options.")
    return "\n".join(lines).rstrip()


def reference() -> str:
    """The generated part of docs/cli.md: every command registered in `COMMANDS`."""
    from astra.cli.main import COMMANDS, cli

    root = click.Context(cli, info_name="astra")
    out = ["## Reference", "",
           "Every command, from its own definition (`astra COMMAND --help` prints the same). The options every "
           "command takes: `-h`/`--help`; `astra --version` prints the version.", "",
           "| command | what it does |", "|---|---|"]
    out += [f"| [`astra {name}`](#astra-{name}) | {_cell(summary)} |" for name, (_, _, summary) in COMMANDS.items()]
    for name, (module, attr, summary) in COMMANDS.items():
        cmd, why = load_command(module, attr)
        out += ["", command_section(name, summary, cmd, why, root)]
    return "\n".join(out) + "\n"


def render(current: str) -> str:
    """The whole document: the preamble of `current` (everything above the marker) and a fresh
    reference."""
    preamble = current.split(MARKER, 1)[0].rstrip("\n") if MARKER in current else current.rstrip("\n")
    return f"{preamble}\n\n{MARKER}\n\n{reference()}"


def main(argv: list[str]) -> int:
    write = "--write" in argv
    paths = [a for a in argv if not a.startswith("--")]
    unknown = [a for a in argv if a.startswith("--") and a not in ("--write", "--check")]
    if unknown or len(paths) > 1:
        print("usage: python -m astra.cli.reference [--write | --check] [PATH (default: docs/cli.md)]",
              file=sys.stderr)
        return 2
    doc = Path(paths[0]) if paths else DOC
    try:
        current = doc.read_text(encoding="utf-8") if doc.exists() else ""
    except OSError as err:
        print(f"error: cannot read `{doc}`: {err.strerror or err}", file=sys.stderr)
        return 1
    fresh = render(current)
    if write:
        if fresh != current:
            doc.write_text(fresh, encoding="utf-8")
            print(f"wrote {doc}", file=sys.stderr)
        return 0
    if fresh != current:
        print(f"error: `{doc}` is not current with the commands' definitions; run `{COMMAND_TO_RUN}`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
