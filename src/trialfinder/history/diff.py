"""Field-level differences between two versions of a study record (pure functions, no I/O).

Why not a generic JSON diff: a list of sites is a set of places, not a sequence. Matching list items by
position turns "one site added at the top" into a change of every site; matching them by their natural
key (a site by facility and city, an arm by its label, an outcome by its measure) gives the one change
that happened. Paths are dotted API v2 paths; a keyed list item shows its key in brackets
(``protocolSection.contactsLocationsModule.locations[Mayo Clinic, Rochester].status``), an item of a
list without a key its position (``...[2]``), and a list of plain values (conditions, keywords) is
compared as a set, so each added or removed value is one change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "diff", "LIST_KEYS"]


@dataclass(frozen=True)
class Change:
    """One difference: ``op`` is ``changed``, ``added`` (old is None) or ``removed`` (new is None)."""

    path: str
    old: Any
    new: Any
    op: str = "changed"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new, "op": self.op}


def _text(item: dict[str, Any], *names: str) -> str | None:
    parts = [str(item.get(n) or "").strip() for n in names]
    return ", ".join(p for p in parts if p) or None


#: Natural keys of list items, by the list's path (item keys and positions removed from the path).
LIST_KEYS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "protocolSection.contactsLocationsModule.locations": lambda i: _text(i, "facility", "city"),
    "protocolSection.contactsLocationsModule.locations[].contacts": lambda i: _text(i, "name", "role"),
    "protocolSection.contactsLocationsModule.centralContacts": lambda i: _text(i, "name"),
    "protocolSection.contactsLocationsModule.overallOfficials": lambda i: _text(i, "name"),
    "protocolSection.armsInterventionsModule.armGroups": lambda i: _text(i, "label"),
    "protocolSection.armsInterventionsModule.interventions": lambda i: _text(i, "type", "name"),
    "protocolSection.outcomesModule.primaryOutcomes": lambda i: _text(i, "measure"),
    "protocolSection.outcomesModule.secondaryOutcomes": lambda i: _text(i, "measure"),
    "protocolSection.outcomesModule.otherOutcomes": lambda i: _text(i, "measure"),
    "protocolSection.sponsorCollaboratorsModule.collaborators": lambda i: _text(i, "name"),
    "protocolSection.identificationModule.secondaryIdInfos": lambda i: _text(i, "id"),
    "protocolSection.referencesModule.references": lambda i: _text(i, "pmid") or _text(i, "citation"),
    "protocolSection.referencesModule.seeAlsoLinks": lambda i: _text(i, "url"),
    "protocolSection.referencesModule.availIpds": lambda i: _text(i, "id", "type"),
    "documentSection.largeDocumentModule.largeDocs": lambda i: _text(i, "filename"),
}

#: Keys tried, in order, for lists not named above (derived MeSH terms, result groups, ...).
_GENERIC_KEYS = ("id", "label", "measure", "name", "title", "term")

_ITEM = re.compile(r"\[[^\]]*\]")


def _list_path(path: str) -> str:
    """``a.b[x].c`` -> ``a.b[].c``: the path of a list independent of which item it sits in."""
    return _ITEM.sub("[]", path)


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every field-level change from ``old`` to ``new`` (two records, or parts of them at ``path``)."""
    out: list[Change] = []
    _walk(old, new, path, out)
    return out


def _walk(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else key
            if key not in new:
                out.append(Change(sub, old[key], None, "removed"))
            elif key not in old:
                out.append(Change(sub, None, new[key], "added"))
            else:
                _walk(old[key], new[key], sub, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        _walk_list(old, new, path, out)
        return
    if old is None:
        out.append(Change(path, None, new, "added"))
    elif new is None:
        out.append(Change(path, old, None, "removed"))
    else:
        out.append(Change(path, old, new))


def _keyed(items: list[Any], key: Callable[[dict[str, Any]], str | None]) -> dict[str, Any] | None:
    """Items by natural key, or None when some item has no key or two share one (then: by position)."""
    out: dict[str, Any] = {}
    for item in items:
        k = key(item) if isinstance(item, dict) else None
        if k is None or k in out:
            return None
        out[k] = item
    return out


def _key_for(path: str, old: list[Any], new: list[Any]) -> Callable[[dict[str, Any]], str | None] | None:
    known = LIST_KEYS.get(_list_path(path))
    if known is not None:
        return known
    items = [i for i in old + new if isinstance(i, dict)]
    if not items or len(items) != len(old) + len(new):
        return None
    for name in _GENERIC_KEYS:
        if all(i.get(name) not in (None, "") for i in items):
            return _field_key(name)
    return None


def _field_key(name: str) -> Callable[[dict[str, Any]], str | None]:
    def key(item: dict[str, Any]) -> str | None:
        return _text(item, name)

    return key


def _walk_list(old: list[Any], new: list[Any], path: str, out: list[Change]) -> None:
    if all(not isinstance(v, (dict, list)) for v in old + new):
        # plain values (conditions, keywords, phases): a set, each addition or removal one change
        new_set = set(map(_hashable, new))
        old_set = set(map(_hashable, old))
        if new_set == old_set:
            out.append(Change(path, old, new))  # the same values in another order (or repeated)
            return
        out.extend(Change(path, v, None, "removed") for v in old if _hashable(v) not in new_set)
        out.extend(Change(path, None, v, "added") for v in new if _hashable(v) not in old_set)
        return
    key = _key_for(path, old, new)
    if key is not None:
        old_by, new_by = _keyed(old, key), _keyed(new, key)
        if old_by is not None and new_by is not None:
            for k, item in old_by.items():
                sub = f"{path}[{k}]"
                if k not in new_by:
                    out.append(Change(sub, item, None, "removed"))
                else:
                    _walk(item, new_by[k], sub, out)
            for k, item in new_by.items():
                if k not in old_by:
                    out.append(Change(f"{path}[{k}]", None, item, "added"))
            return
    for i in range(max(len(old), len(new))):
        sub = f"{path}[{i}]"
        if i >= len(new):
            out.append(Change(sub, old[i], None, "removed"))
        elif i >= len(old):
            out.append(Change(sub, None, new[i], "added"))
        else:
            _walk(old[i], new[i], sub, out)


def _hashable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
