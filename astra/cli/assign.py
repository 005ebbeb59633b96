"""`astra assign`: the arm of unit keys in an experiment, as `assignment(experiment)` gives it in
backfills and online (one operator, the same hash), or the experiment itself when no key is given."""

from __future__ import annotations

import json
from pathlib import Path

import click

from astra.cli.common import ALLOW_UNLOCKED, PROJECT, fail, load, output_file, readable_file


@click.command("assign")
@click.argument("experiment")
@PROJECT
@click.option("--key", "keys", multiple=True, metavar="KEY", help="A unit key (repeat for several).")
@click.option("--keys", "keys_file", type=click.Path(path_type=Path),
              help="A table file (.parquet, .csv, ...) of unit keys; its rows come back with an `arm` column.")
@click.option("--column", help="The keys' column in --keys [default: the unit entity's key name].")
@click.option("--out", type=click.Path(path_type=Path), help="Write the --keys table with arms here [default: print].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs.")
@ALLOW_UNLOCKED
def assign_cmd(experiment: str, project: Path | None, keys: tuple[str, ...], keys_file: Path | None,
               column: str | None, out: Path | None, fmt: str, allow_unlocked: bool) -> None:
    """Print the arm of each unit KEY in EXPERIMENT (none: the unit is not in it), or, with no
    key, the experiment's declaration (unit, layer, slice, salt, holdout, coverage, arms)."""
    from astra.plan import experiments

    if keys and keys_file is not None:
        fail("give unit keys with --key or --keys, not both", 2)
    if (out is not None or column is not None) and keys_file is None:
        fail("--out and --column go with --keys FILE", 2)
    if keys_file is not None:
        readable_file(keys_file, "--keys")
    if out is not None:
        output_file(out)
    proj = load(project, allow_unlocked)
    try:
        e = experiments.find(proj.plan, experiment)
    except KeyError as err:
        fail(err.args[0])
    about = experiments.describe(proj.plan, e)
    unit = about["unit"]
    if keys_file is not None:
        _assign_table(e, keys_file, column or unit["key"], out, fmt)
        return
    if not keys:
        click.echo(json.dumps(about, indent=2) if fmt == "json" else _describe_text(about))
        return
    parsed = [_parse_key(k, unit["type"]) for k in keys]
    arms = experiments.arms(e, parsed)
    if fmt == "json":
        click.echo(json.dumps([{unit["key"]: k, "arm": a} for k, a in zip(parsed, arms, strict=True)], indent=2))
        return
    width = max(len(str(k)) for k in parsed)
    for k, a in zip(parsed, arms, strict=True):
        click.echo(f"{k!s:<{width}}  {a if a is not None else '(not in the experiment)'}")


def _parse_key(text: str, key_type: str):
    if key_type in ("int64", "int32"):
        try:
            value = int(text, 10)
        except ValueError:
            fail(f"--key {text!r}: the unit key is {key_type}, not an integer", 2)
        bits = 63 if key_type == "int64" else 31
        if not -(2**bits) <= value < 2**bits:
            fail(f"--key {text}: out of the range of {key_type}", 2)
        return value
    return text


def _assign_table(e, path: Path, column: str, out: Path | None, fmt: str) -> None:
    import polars as pl

    from astra.errors import DataError
    from astra.io import read_table, write_table
    from astra.plan import experiments

    try:
        table = read_table(path)
    except DataError as err:
        fail(err.message)
    if column not in table.columns:
        fail(f"{path}: no column `{column}` (columns: {', '.join(table.columns)}); name it with --column")
    dtype = table.schema[column]
    if not (dtype == pl.String or dtype.is_integer()):
        fail(f"{path}: column `{column}` is {dtype}; unit keys are strings or integers")
    keys = table[column].to_list()
    known = [k for k in keys if k is not None]
    arms = dict(zip(known, experiments.arms(e, known), strict=True)) if known else {}
    result = table.with_columns(pl.Series("arm", [arms.get(k) if k is not None else None for k in keys],
                                          dtype=pl.String))
    if out is not None:
        try:
            write_table(result, out)
        except DataError as err:
            fail(err.message)
        click.echo(f"wrote {result.height} rows with their arm to {out}", err=True)
    elif fmt == "json":
        click.echo(json.dumps(result.to_dicts(), indent=2, default=str))
    else:
        click.echo(str(result))


def _describe_text(d: dict) -> str:
    arms = ", ".join(f"{a['name']} {a['percent']:g}%" for a in d["arms"])
    lo, hi = d["slice"]
    return "\n".join([
        f"experiment {d['name']}",
        f"  unit      {d['unit']['entity']} (key {d['unit']['key']}: {d['unit']['type']})",
        *([f"  within    {d['within']['experiment']}.{d['within']['arm']} (only units in that arm)"]
          if d["within"] else []),
        f"  layer     {d['layer']} {lo:g}%-{hi:g}%",
        f"  salt      {json.dumps(d['salt'], ensure_ascii=False)}",
        f"  arms      {arms}",
        f"  holdout   {d['holdout']:g}%",
        f"  coverage  {d['coverage']:g}%",
        f"  hash      {d['hash']} (FNV-1a; docs/language.md, Experiments)",
    ])
