"""`astra lsp`: the language server, for editors."""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default and only transport; "
              "accepted because editors pass it).")
def lsp_cmd(stdio: bool) -> None:
    """Run the language server on stdin/stdout: the compiler's diagnostics as you type, hover,
    go to definition, references, completion, symbols, formatting and quick fixes for .feat files.

    An editor starts it; see docs/editor.md."""
    from astra.lsp.server import run

    run()
