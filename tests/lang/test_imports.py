"""Imports that name no readable path end in a located E0110, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from astra.compiler import compile_project


@pytest.mark.parametrize("path", ["a\x00b", "x" * 5000, "loop/"], ids=["nul-byte", "name-too-long", "symlink-loop"])
def test_an_unreadable_import_path_is_a_located_error(tmp_path: Path, path: str) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "a.feat").write_text(f'import "{path}"\nentity u {{ key id: int64 }}\n')
    result = compile_project(tmp_path, lock="ignore")
    (d,) = result.diagnostics
    assert d.code == "E0110" and Path(d.span.file).name == "a.feat" and (d.span.line, d.span.col) == (1, 1), d
