"""editors/astra.tmLanguage.json is generated (astra/lsp/textmate.py): the committed file equals
the generated one, the generator's check fails on a stale file and its write repairs it, and a
name the registries gain is highlighted without editing the grammar by hand."""

from __future__ import annotations

import json
import re

import pytest

from astra.lsp import textmate


def _scope_regex(grammar: dict, scope: str) -> str:
    for p in grammar["repository"]["call"]["patterns"]:
        if p["name"] == scope:
            return p["match"]
    raise AssertionError(scope)


def test_the_committed_grammar_is_the_generated_one():
    assert textmate.GRAMMAR_FILE.read_text(encoding="utf-8") == textmate.render(), \
        f"editors/astra.tmLanguage.json is stale: run `{textmate.COMMAND_TO_RUN}`"


def test_check_fails_on_a_stale_file_and_write_repairs_it(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "astra.tmLanguage.json"
    stale.write_text(textmate.render().replace("|median|", "|"), encoding="utf-8")
    monkeypatch.setattr(textmate, "GRAMMAR_FILE", stale)
    assert textmate.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: astra.tmLanguage.json is out of date") and err.count("\n") == 1
    assert textmate.main(["--write"]) == 0
    assert stale.read_text(encoding="utf-8") == textmate.render()
    assert textmate.main(["--check"]) == 0
    assert textmate.main([]) == 2 and textmate.main(["--write", "x"]) == 2


def test_a_newly_registered_aggregation_and_function_are_highlighted(monkeypatch):
    """The generator reads the registries: a name added there is in the next generated grammar."""
    monkeypatch.setattr(textmate, "aggregation_names", lambda: ["count", "brand_new_agg"])
    monkeypatch.setattr(textmate, "function_names", lambda: ["abs", "brand_new_fn"])
    g = json.loads(textmate.render())
    agg = _scope_regex(g, "support.function.aggregation.astra")
    fn = _scope_regex(g, "support.function.astra")
    assert re.search(agg, "brand_new_agg (").group(0) == "brand_new_agg"
    assert re.search(agg, "brand_new_agg_x(") is None and re.search(agg, "brand_new_agg") is None  # a call only
    assert re.search(fn, "brand_new_fn(").group(0) == "brand_new_fn"


def test_fitted_transforms_and_assignment_are_highlighted_as_functions():
    fn = _scope_regex(json.loads(textmate.render()), "support.function.astra")
    for name in ("standard_scale", "target_encode", "impute", "assignment", "abs"):
        assert re.search(fn, f"{name}(x)").group(0) == name, name


def test_a_name_that_is_not_an_identifier_is_refused():
    with pytest.raises(ValueError, match="not an identifier"):
        textmate._words(["ok", "a|b"])
