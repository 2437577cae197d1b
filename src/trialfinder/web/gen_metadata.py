"""Generate ``static/api/metadata.json`` (the ``/api/v2/studies/metadata`` field tree) from the official
ClinicalTrials.gov OpenAPI file.

Why generated: the tree has hundreds of fields; deriving it from the official ``Study`` schema keeps it
complete and exact, and committing the JSON means the server needs neither the YAML nor PyYAML at run
time (the same choice as ``model/enums.py``). Piece names come from :data:`trialfinder.search.fields.PIECES`
where trialfinder knows the official name, else the field name with a capital first letter.

Run: ``python -m trialfinder.web.gen_metadata path/to/ctg-oas-v2.0.5.yaml``.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

OUT = Path(str(resources.files("trialfinder.web") / "static" / "api" / "metadata.json"))


#: Field names too generic to be a piece name alone: the parent's piece is prefixed ("OrgStudyIdType").
GENERIC = frozenset({"id", "type", "link", "name", "class", "date", "count", "label", "description", "role",
                     "status", "value", "title", "domain", "term", "url", "comment", "phone", "email",
                     "city", "state", "zip", "country", "lat", "lon", "facility", "citation", "pmid"})


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def build(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The FieldNode list of the ``Study`` schema."""
    from trialfinder.search.fields import PIECES

    schemas = spec["components"]["schemas"]
    piece_of: dict[str, str] = {}
    for piece, path in PIECES.items():
        piece_of.setdefault(path, piece)

    def piece_name(name: str, path: str, parent: str, struct: bool, is_list: bool) -> str:
        if path in piece_of and not struct:
            return piece_of[path]
        cap = name[:1].upper() + name[1:]
        if struct and is_list and cap.endswith("s") and not cap.endswith("ss"):
            cap = cap[:-1]
        if name in GENERIC and parent:
            stem = parent
            for suffix in ("Infos", "Info", "Struct", "Module", "s"):
                if stem.endswith(suffix) and len(stem) > len(suffix):
                    stem = stem[: -len(suffix)]
                    break
            return stem + cap
        return cap

    def node(name: str, schema: dict[str, Any], path: str, depth: int, parent: str = "") -> dict[str, Any]:
        is_list = schema.get("type") == "array"
        item = schema.get("items", {}) if is_list else schema
        ref = _ref_name(item)
        target = schemas.get(ref, {}) if ref else item
        struct = not target.get("enum") and (target.get("type") == "object" or "properties" in target)
        piece = piece_name(name, path, parent, struct, is_list)
        out: dict[str, Any] = {"name": name, "piece": piece}
        if target.get("enum"):
            out.update(sourceType="ENUM", type=ref or "enum", isEnum=True)
        elif target.get("type") == "object" or "properties" in target:
            out.update(sourceType="STRUCT", type=ref or "object")
            if depth < 12:
                out["children"] = [node(k, v, f"{path}.{k}", depth + 1, piece)
                                   for k, v in (target.get("properties") or {}).items()]
        elif target.get("type") == "boolean":
            out.update(sourceType="BOOLEAN", type="boolean")
        elif target.get("type") in ("integer", "number"):
            out.update(sourceType="NUMERIC", type=target.get("format") or target["type"])
        elif target.get("format") == "date" or (ref or "").endswith("Date"):
            out.update(sourceType="DATE", type=ref or "date")
        else:
            out.update(sourceType="TEXT", type=ref or "text")
        if is_list:
            out["type"] = out["type"] + "[]"
        return out

    study = schemas["Study"]["properties"]
    return [node(k, v, k, 0) for k, v in study.items()]


def main(argv: list[str]) -> int:
    import yaml  # development dependency only

    spec = yaml.safe_load(Path(argv[0]).read_text(encoding="utf-8"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(spec), separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
