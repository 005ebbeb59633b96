"""The typed query an online store answers: `OnlineStore.lookup(Lookup(...))`.

A server has already checked a request against the plan (`astra.serve.validate`): it knows the
service as the plan's IR object and each entity's key values, typed and in a fixed column order.
It hands the store exactly that, so nothing is re-parsed from names or dicts on the hot path.
`Store.get` (service name, entity dicts) is the convenience for Python callers: it builds a
`Lookup` and answers it the same way.
"""

from __future__ import annotations

import attrs

from astra.plan import ir


@attrs.frozen(slots=True)
class Lookup:
    """Feature values of `service` for each entity at `at`.

    `keys` holds one tuple per entity: its key values in `key_names` order (every key column of
    the service's entities, each once; `astra.online.store.compiled_keys` gives the plan's order,
    a server may use its own).  `at` is µs since the epoch, one for all entities or one per
    entity (None: the store's clock).  `request` is the request inputs, `{qualified field: value}`
    or one such dict per entity.  With `validity`, `Result.valid_until` is filled."""

    service: ir.Service
    key_names: tuple[str, ...]
    keys: list[tuple]
    at: int | list[int] | None = None
    request: dict | list[dict] | None = None
    validity: bool = False


def key_tuples(entities: list[dict], key_names: tuple[str, ...], service: str) -> list[tuple]:
    """Entity dicts as key tuples in `key_names` order; a row without one of them is a KeyError
    naming the service's keys."""
    try:
        if len(key_names) == 1:
            (k,) = key_names
            return [(e[k],) for e in entities]
        return [tuple(e[k] for k in key_names) for e in entities]
    except KeyError as exc:
        raise KeyError(f"service `{service}` needs keys {list(key_names)}; a query row lacks {exc}") from None
    except TypeError:
        raise TypeError(f"service `{service}`: entities must be dicts of key values, one per entity") from None
