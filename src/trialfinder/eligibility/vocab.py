"""Versioned vocabularies of the eligibility engine and their validating loader.

The cue words, units, drug classes and condition synonyms live in JSON files under ``data/`` so they
can be reviewed and extended without touching code, and so a verdict can be traced to the vocabulary
version that produced it.  Every file is validated on load: a malformed vocabulary would otherwise
show up as silently wrong verdicts, which for eligibility means patients wrongly turned away.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from trialfinder.errors import TrialfinderError

__all__ = ["Analyte", "Vocab", "VocabError", "load_vocab", "validate_vocab_file", "VOCAB_FILES"]

VOCAB_FILES = ("cues.json", "units.json", "drugs.json", "conditions.json")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


class VocabError(TrialfinderError, ValueError):
    """A vocabulary file is missing, not JSON, or does not have the expected shape."""


@dataclass(frozen=True)
class Analyte:
    """A lab value, vital sign or score: how it is named, its canonical unit and conversions."""

    key: str
    names: tuple[str, ...]
    unit: str
    convert: dict[str, tuple[float, float]]
    normal: tuple[float, float] | None
    panels: tuple[str, ...]
    score: bool
    scale: tuple[float, float] | None
    roman: bool
    bare_number_factor: float | None


@dataclass
class Vocab:
    """All vocabularies, pre-indexed for lookups; built once per process by :func:`load_vocab`."""

    versions: dict[str, str]
    cues: dict[str, list[str]]
    comparators: dict[str, list[str]]
    unit_aliases: dict[str, str]
    analytes: dict[str, Analyte]
    analyte_names: dict[str, str]
    panels: dict[str, list[str]]
    qualitative: dict[str, dict[str, Any]]
    drug_classes: dict[str, dict[str, list[str]]]
    drug_class_names: dict[str, str]
    drug_members: dict[str, set[str]]
    spelling: dict[str, str]
    concepts: dict[str, list[str]]
    concept_classes: dict[str, list[str]]
    synonym_index: dict[str, set[str]] = field(default_factory=dict)
    boilerplate: frozenset[str] = frozenset()
    qualifiers: frozenset[str] = frozenset()
    decisive_classes: frozenset[str] = frozenset()
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def synonym_terms(self) -> tuple[str, ...]:
        """All condition synonyms, as a tuple usable as a cache key."""
        return self._memo("synonym_terms", lambda: tuple(self.synonym_index))

    @property
    def drug_terms(self) -> tuple[str, ...]:
        """All drug names and drug-class names."""
        return self._memo("drug_terms", lambda: tuple(self.drug_members) + tuple(self.drug_class_names))

    @property
    def analyte_terms(self) -> tuple[str, ...]:
        """All analyte (lab, vital sign, score) names."""
        return self._memo("analyte_terms", lambda: tuple(self.analyte_names))

    @property
    def spelling_pairs(self) -> tuple[tuple[str, str], ...]:
        """British-to-American spelling fixes, longest first."""
        return self._memo(
            "spelling_pairs", lambda: tuple(sorted(self.spelling.items(), key=lambda kv: -len(kv[0])))
        )

    def _memo(self, key: str, make: Any) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def version(self) -> str:
        """One string naming every file version, recorded with verdicts for traceability."""
        return ",".join(f"{k.removesuffix('.json')}@{v}" for k, v in sorted(self.versions.items()))

    def class_members(self, concept: str) -> set[str]:
        """A concept plus every concept its class lists (transitively)."""
        out = {concept}
        todo = [concept]
        while todo:
            c = todo.pop()
            for m in self.concept_classes.get(c, []):
                if m not in out:
                    out.add(m)
                    todo.append(m)
        return out


def _fail(name: str, where: str, msg: str) -> VocabError:
    return VocabError(f"{name}: {where}: {msg}")


def _str_list(name: str, where: str, value: Any, *, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(name, where, "expected a list of strings")
    if not value and not allow_empty:
        raise _fail(name, where, "must not be empty")
    return [v.lower() for v in value]


def _common(name: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail(name, "$", "top level must be an object")
    version = data.get("version")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise _fail(name, "version", "required, a semantic version string like '1.0.0'")
    return data


def _validate_cues(name: str, data: dict[str, Any]) -> None:
    required = (
        "negation_pre",
        "negation_post",
        "terminators",
        "uncertainty",
        "family",
        "history",
        "hypothetical",
        "patient_consents",
        "patient_complies",
        "patient_refuses",
        "healthy",
        "no_medications",
    )
    for key in required:
        _str_list(name, key, data.get(key))
    comps = data.get("comparators")
    if not isinstance(comps, dict):
        raise _fail(name, "comparators", "expected an object")
    for op, words in comps.items():
        if op not in (">=", ">", "<=", "<", "="):
            raise _fail(name, f"comparators.{op}", "unknown comparator")
        _str_list(name, f"comparators.{op}", words)


def _factor(name: str, where: str, value: Any) -> tuple[float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), 0.0
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return float(value[0]), float(value[1])
    raise _fail(name, where, "a conversion is a factor or [factor, offset]")


def _range(name: str, where: str, value: Any, *, open_ends: bool = False) -> tuple[Any, Any]:
    ok_types = (int, float, type(None)) if open_ends else (int, float)
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, ok_types) for v in value):
        raise _fail(name, where, "expected [low, high]")
    low, high = value
    if low is not None and high is not None and low > high:
        raise _fail(name, where, "low is greater than high")
    return (None if low is None else float(low), None if high is None else float(high))


def _validate_units(name: str, data: dict[str, Any]) -> None:
    aliases = data.get("unit_aliases")
    if not isinstance(aliases, dict):
        raise _fail(name, "unit_aliases", "expected an object")
    for unit, names in aliases.items():
        _str_list(name, f"unit_aliases.{unit}", names)
    analytes = data.get("analytes")
    if not isinstance(analytes, dict) or not analytes:
        raise _fail(name, "analytes", "expected a non-empty object")
    known_units = set(aliases) | {""}
    for key, a in analytes.items():
        where = f"analytes.{key}"
        if not isinstance(a, dict):
            raise _fail(name, where, "expected an object")
        _str_list(name, where + ".names", a.get("names"))
        unit = a.get("unit")
        if not isinstance(unit, str) or unit not in known_units:
            raise _fail(name, where + ".unit", f"unknown unit {unit!r}")
        for u, f in (a.get("convert") or {}).items():
            if u not in known_units:
                raise _fail(name, f"{where}.convert.{u}", "unknown unit")
            _factor(name, f"{where}.convert.{u}", f)
        if "normal" in a:
            _range(name, where + ".normal", a["normal"])
        if "scale" in a:
            _range(name, where + ".scale", a["scale"])
    panels = data.get("panels")
    if not isinstance(panels, dict):
        raise _fail(name, "panels", "expected an object")
    for p, names in panels.items():
        _str_list(name, f"panels.{p}", names)
    for key, q in (data.get("qualitative") or {}).items():
        where = f"qualitative.{key}"
        if not isinstance(q, dict) or q.get("analyte") not in analytes:
            raise _fail(name, where, "needs an 'analyte' that is defined in analytes")
        _str_list(name, where + ".terms", q.get("terms"))
        _range(name, where + ".range", q.get("range"), open_ends=True)


def _validate_drugs(name: str, data: dict[str, Any]) -> None:
    classes = data.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise _fail(name, "classes", "expected a non-empty object")
    for key, c in classes.items():
        if not isinstance(c, dict):
            raise _fail(name, f"classes.{key}", "expected an object")
        _str_list(name, f"classes.{key}.names", c.get("names"))
        _str_list(name, f"classes.{key}.members", c.get("members"))


def _validate_conditions(name: str, data: dict[str, Any]) -> None:
    spelling = data.get("spelling")
    if not isinstance(spelling, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in spelling.items()
    ):
        raise _fail(name, "spelling", "expected an object of strings")
    concepts = data.get("concepts")
    if not isinstance(concepts, dict) or not concepts:
        raise _fail(name, "concepts", "expected a non-empty object")
    for key, syns in concepts.items():
        _str_list(name, f"concepts.{key}", syns)
    for key, members in (data.get("classes") or {}).items():
        for m in _str_list(name, f"classes.{key}", members):
            if m not in concepts:
                raise _fail(name, f"classes.{key}", f"member {m!r} is not a concept")
    _str_list(name, "boilerplate", data.get("boilerplate"))
    _str_list(name, "qualifiers", data.get("qualifiers"))
    for k in _str_list(name, "decisive_classes", data.get("decisive_classes", []), allow_empty=True):
        if k not in (data.get("classes") or {}):
            raise _fail(name, "decisive_classes", f"{k!r} is not a class")


_VALIDATORS = {
    "cues.json": _validate_cues,
    "units.json": _validate_units,
    "drugs.json": _validate_drugs,
    "conditions.json": _validate_conditions,
}


def validate_vocab_file(name: str, data: Any) -> dict[str, Any]:
    """Validate one parsed vocabulary file by its file name; raises :class:`VocabError`."""
    if name not in _VALIDATORS:
        raise VocabError(f"{name}: not a known vocabulary file")
    checked = _common(name, data)
    _VALIDATORS[name](name, checked)
    return checked


def _read(directory: Path | None, name: str) -> Any:
    try:
        if directory is None:
            text = (
                resources.files("trialfinder.eligibility").joinpath("data", name).read_text(encoding="utf-8")
            )
        else:
            text = (directory / name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise VocabError(f"{name}: cannot read: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VocabError(f"{name}: not valid JSON: {exc}") from exc


def _build(files: dict[str, dict[str, Any]]) -> Vocab:
    cues_d, units_d, drugs_d, cond_d = (files[n] for n in VOCAB_FILES)
    cues = {k: [s.lower() for s in v] for k, v in cues_d.items() if isinstance(v, list)}
    comparators = {op: [w.lower() for w in ws] for op, ws in cues_d["comparators"].items()}

    unit_aliases: dict[str, str] = {}
    for unit, names in units_d["unit_aliases"].items():
        for n in names:
            unit_aliases.setdefault(n.lower(), unit)
        unit_aliases.setdefault(unit, unit)
    analytes: dict[str, Analyte] = {}
    analyte_names: dict[str, str] = {}
    for key, a in units_d["analytes"].items():
        an = Analyte(
            key=key,
            names=tuple(n.lower() for n in a["names"]),
            unit=a["unit"],
            convert={u: _factor("units.json", key, f) for u, f in (a.get("convert") or {}).items()},
            normal=_range("units.json", key, a["normal"]) if "normal" in a else None,
            panels=tuple(a.get("panels", [])),
            score=bool(a.get("score", False)),
            scale=_range("units.json", key, a["scale"]) if "scale" in a else None,
            roman=bool(a.get("roman", False)),
            bare_number_factor=a.get("bare_number_factor"),
        )
        analytes[key] = an
        for n in an.names:
            analyte_names.setdefault(n, key)

    drug_classes = {
        k: {"names": [n.lower() for n in c["names"]], "members": [m.lower() for m in c["members"]]}
        for k, c in drugs_d["classes"].items()
    }
    drug_class_names: dict[str, str] = {}
    drug_members: dict[str, set[str]] = {}
    for k, c in drug_classes.items():
        for n in c["names"]:
            drug_class_names.setdefault(n, k)
        for m in c["members"]:
            drug_members.setdefault(m, set()).add(k)

    concepts = {k: [s.lower() for s in v] for k, v in cond_d["concepts"].items()}
    synonym_index: dict[str, set[str]] = {}
    for k, syns in concepts.items():
        for s in syns:
            synonym_index.setdefault(s, set()).add(k)
    return Vocab(
        versions={n: files[n]["version"] for n in VOCAB_FILES},
        cues=cues,
        comparators=comparators,
        unit_aliases=unit_aliases,
        analytes=analytes,
        analyte_names=analyte_names,
        panels={k: [n.lower() for n in v] for k, v in units_d["panels"].items()},
        qualitative=units_d.get("qualitative", {}),
        drug_classes=drug_classes,
        drug_class_names=drug_class_names,
        drug_members=drug_members,
        spelling={k.lower(): v.lower() for k, v in cond_d["spelling"].items()},
        concepts=concepts,
        concept_classes={k: list(v) for k, v in (cond_d.get("classes") or {}).items()},
        synonym_index=synonym_index,
        boilerplate=frozenset(w.lower() for w in cond_d["boilerplate"]),
        qualifiers=frozenset(w.lower() for w in cond_d["qualifiers"]),
        decisive_classes=frozenset(cond_d.get("decisive_classes", [])),
    )


def load_vocab(directory: str | Path | None = None) -> Vocab:
    """Load and validate all vocabulary files (the packaged ones unless ``directory`` is given).

    The packaged vocabulary is cached for the life of the process; an explicit directory is always
    re-read so tests and curators can try edited files.
    """
    if directory is None:
        return _packaged()
    path = Path(directory)
    return _build({n: validate_vocab_file(n, _read(path, n)) for n in VOCAB_FILES})


@lru_cache(maxsize=1)
def _packaged() -> Vocab:
    return _build({n: validate_vocab_file(n, _read(None, n)) for n in VOCAB_FILES})
