"""docs/cli.md: a hand-written preamble, then a reference generated from the commands' click
definitions that must be current (regenerate with `uv run python -m astra.cli.reference --write`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from astra.cli import reference
from astra.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"


def test_docs_cli_md_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert reference.render(text) == text, (
        f"docs/cli.md is not current with the commands' definitions: run `{reference.COMMAND_TO_RUN}`")


def test_the_hand_written_preamble_comes_first_and_is_kept() -> None:
    text = DOC.read_text(encoding="utf-8")
    preamble, generated = text.split(reference.MARKER)
    for heading in ("## The project", "## The data root", "## Exit status and errors", "## Durations and times",
                    "## Progress", "## `astra.lock` in every command"):
        assert f"\n{heading}\n" in preamble, heading
    assert generated.lstrip().startswith("## Reference")
    changed = preamble.replace("## Durations and times", "## Durations and times\n\nA new sentence.")
    again = reference.render(changed + reference.MARKER + "\n\nan old, stale reference\n")
    assert again.startswith(changed.rstrip("\n") + "\n\n" + reference.MARKER)
    assert "an old, stale reference" not in again and "### `astra backfill`" in again


def section(text: str, name: str) -> str:
    start = text.index(f"### `astra {name}`")
    end = text.find("\n### ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def test_every_registered_command_and_each_of_its_options_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, (module, attr, _) in COMMANDS.items():
        assert f"| [`astra {name}`](#astra-{name}) |" in text, name
        part = section(text, name)
        cmd, _ = reference.load_command(module, attr)
        if cmd is None:
            continue
        ctx = click.Context(cmd, info_name=name)
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden and "--help" not in param.opts:
                for opt in param.opts:
                    assert f"`{opt}`" in part, (name, opt)
            if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
                assert all(f"`{c}`" in part for c in param.type.choices), (name, param.name)


@pytest.fixture
def scratch_commands(tmp_path, monkeypatch):
    """Three modules: a working command, one whose import fails, one that is not there at all."""
    (tmp_path / "fresh_cmd.py").write_text(textwrap.dedent('''
        import click

        @click.command("fresh")
        @click.argument("target")
        @click.option("--mode", type=click.Choice(["fast", "safe"]), default="safe", help="How | to run.")
        @click.option("--limit", type=int, required=True, help="At most this many.")
        @click.option("--tag", multiple=True, help="Repeat for several.")
        @click.option("--secret", hidden=True)
        def fresh(target, mode, limit, tag, secret):
            """Do the fresh thing to TARGET.

            Exit status: 0 always."""
    '''))
    (tmp_path / "broken_cmd.py").write_text("raise RuntimeError('half written')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(COMMANDS, "fresh", ("fresh_cmd", "fresh", "A fresh command."))
    monkeypatch.setitem(COMMANDS, "broken", ("broken_cmd", "cmd", "Not finished yet."))
    monkeypatch.setitem(COMMANDS, "ghost", ("no_such_module_anywhere", "cmd", "Not there at all."))


def test_a_new_command_is_picked_up_and_one_that_does_not_import_is_listed(scratch_commands) -> None:
    text = reference.reference()
    fresh = section(text, "fresh")
    assert "`astra fresh [OPTIONS] TARGET`" in fresh
    assert "Do the fresh thing to TARGET." in fresh and "Exit status: 0 always." in fresh
    assert "| `--mode` | `fast` \\| `safe` | `safe` | How \\| to run. |" in fresh  # pipes escaped in cells
    assert "| `--limit` | integer | required | At most this many. |" in fresh
    assert "| `--tag` | text, repeatable |" in fresh
    assert "--secret" not in fresh and "--help" not in fresh
    for name, summary in (("broken", "Not finished yet."), ("ghost", "Not there at all.")):
        part = section(text, name)
        assert summary in part and "once its module imports" in part, part
    assert "RuntimeError: half written" in section(text, "broken")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astra.cli.reference", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_check_and_write_from_the_command_line(tmp_path: Path) -> None:
    doc = tmp_path / "cli.md"
    preamble = "# The `astra` command\n\nHand-written.\n"
    doc.write_text(preamble + "\n" + reference.MARKER + "\n\nstale\n")
    r = run("--check", str(doc))
    assert r.returncode == 1 and reference.COMMAND_TO_RUN in r.stderr and r.stderr.startswith("error: ")
    assert run("--write", str(doc)).returncode == 0
    assert doc.read_text().startswith(preamble) and "stale" not in doc.read_text()
    assert run("--check", str(doc)).returncode == 0
    assert run("--bogus").returncode == 2
