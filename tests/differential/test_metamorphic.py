"""Metamorphic checks: changes to a case that the semantics say cannot change an entity's answers,
checked on the offline engine and both online plans without any oracle (each engine against
itself before and after the change).

- adding rows of other entities (keys no query asks for);
- reordering a source file, rows of equal time kept in their order (the tie-break);
- splitting a source: the offline engine's chunks of 1-3 rows, online pushes of 1-3 rows or a
  materialized file, against one whole file and one push;
- renaming features and outputs (answers compared by output position).
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import attrs
from engines import agree, online_store, run_offline, run_online
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from strategies_plan import Case, cases

from astra.plan import ir

BOUNDED = settings(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck), max_examples=50)
OTHER_UIDS = (777, 2**62 - 7, -5)  # never in a query row: the strategies' keys and unknown key differ


def engine_rows(case: Case, chunk_rows: int | None = None, batches: list[int] | None = None,
                materialize: bool = False) -> dict[str, list[list]]:
    """Each engine's outputs as lists in service order (so renamed outputs line up)."""
    names = [o.name for o in case.outputs]
    with tempfile.TemporaryDirectory() as d:
        offline = run_offline(case, Path(d), chunk_rows)
        batch, single = run_online(case, online_store(case, batches, Path(d) if materialize else None))
    return {engine: [[r[n] for n in names] for r in rows]
            for engine, rows in (("offline", offline), ("online_batch", batch), ("online_single", single))}


def assert_same(case: Case, before: dict, after: dict, what: str) -> None:
    types = list(case.output_types().values())
    for engine, rows in before.items():
        for i, (a, b) in enumerate(zip(rows, after[engine])):
            for j, t in enumerate(types):
                assert agree(a[j], b[j], t), (f"{what} changed {engine}'s answer for query row {i} "
                                              f"({case.spine[i]}), output {case.outputs[j].name}: {a[j]!r} -> {b[j]!r}")


@BOUNDED
@given(cases(), st.data())
def test_rows_of_other_entities_change_nothing(case: Case, data) -> None:
    before = engine_rows(case)
    tables = {}
    for name, rows in case.tables.items():
        rows = list(rows)
        key = "uid" if name == "ev" else "holder"
        for _ in range(data.draw(st.integers(1, 6))):
            template = dict(data.draw(st.sampled_from(rows))) if rows else None
            if template is None:
                break
            template[key] = data.draw(st.sampled_from(OTHER_UIDS))
            rows.insert(data.draw(st.integers(0, len(rows))), template)
        tables[name] = rows
    assert_same(case, before, engine_rows(attrs.evolve(case, tables=tables)), "adding other entities' rows")


def reorder(rows: list[dict], time: str, order: list[int]) -> list[dict]:
    """`rows` permuted by `order`, except that rows of one time keep their file order."""
    same_time = collections.defaultdict(collections.deque)
    for r in rows:
        same_time[r.get(time)].append(r)
    return [same_time[rows[i].get(time)].popleft() for i in order]


@BOUNDED
@given(cases(), st.data())
def test_reordering_a_source_file_changes_nothing(case: Case, data) -> None:
    before = engine_rows(case)
    tables = {src.name: reorder(case.tables[src.name], src.time,
                                data.draw(st.permutations(range(len(case.tables[src.name])))))
              for src in case.plan.sources}
    assert_same(case, before, engine_rows(attrs.evolve(case, tables=tables)), "reordering a source")


@BOUNDED
@given(cases(), st.sampled_from([1, 2, 3]), st.sampled_from([[1], [2], [1, 3]]), st.booleans())
def test_splitting_a_source_changes_nothing(case: Case, chunk_rows: int, batches: list[int], materialize: bool) -> None:
    before = engine_rows(case)
    after = engine_rows(case, chunk_rows=chunk_rows, batches=None if materialize else batches,
                        materialize=materialize)
    assert_same(case, before, after, f"chunks of {chunk_rows} rows offline, "
                + ("materializing" if materialize else f"pushes of {batches} rows"))


def rename(plan: ir.Plan, new: dict[str, str]) -> ir.Plan:
    """The plan with every feature `group@v1.name` renamed to `group@v1.new[name]`, references,
    groups and service outputs included (outputs are renamed too)."""
    def fid(old: str) -> str:
        head, name = old.rsplit(".", 1)
        return f"{head}.{new[name]}"

    def expr(e: ir.Expr) -> ir.Expr:
        if isinstance(e, ir.FeatureRef):
            return attrs.evolve(e, feature=fid(e.feature))
        if isinstance(e, ir.Apply):
            return attrs.evolve(e, args=tuple(expr(a) for a in e.args))
        return e

    features = tuple(attrs.evolve(f, id=fid(f.id), name=new[f.name], expr=expr(f.expr)) for f in plan.features)
    groups = tuple(attrs.evolve(g, features=tuple(fid(x) for x in g.features)) for g in plan.groups)
    services = tuple(attrs.evolve(s, outputs=tuple(ir.Output(name="renamed_" + new[o.feature.rsplit(".", 1)[1]],
                                                             feature=fid(o.feature)) for o in s.outputs))
                     for s in plan.services)
    return attrs.evolve(plan, features=features, groups=groups, services=services)


@BOUNDED
@given(cases(), st.data())
def test_renaming_features_changes_nothing(case: Case, data) -> None:
    before = engine_rows(case)
    names = [f.name for f in case.plan.features]
    # new names in a shuffled order, so any order by name differs from the old one
    shuffled = data.draw(st.permutations(range(len(names))))
    new = {n: f"x{shuffled[i]}_{n}" for i, n in enumerate(names)}
    after = engine_rows(attrs.evolve(case, plan=rename(case.plan, new)))
    assert_same(case, before, after, "renaming features")
