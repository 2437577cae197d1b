"""Build the offline map base layer: npm ``world-atlas`` countries-110m TopoJSON -> a small GeoJSON.

Why bundled: maps must work offline and send nothing about a patient's searched area to a third party,
so the default base layer is drawn from this file instead of tiles. Natural Earth data (public domain),
packaged by world-atlas (ISC licence, Copyright 2013-2019 Michael Bostock).

Usage: ``npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz`` then
``python scripts/build_world_geojson.py package/countries-110m.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src" / "trialfinder" / "web" / "static" / "map" / "countries-110m.geojson"


def _arcs(topo: dict[str, Any]) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    out = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((round(x * sx + tx, 2), round(y * sy + ty, 2)))
        out.append(points)
    return out


def _ring(indexes: list[int], arcs: list[list[tuple[float, float]]]) -> list[list[float]]:
    ring: list[tuple[float, float]] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        ring.extend(arc if not ring else arc[1:])
    return [list(p) for p in ring]


def convert(topo: dict[str, Any]) -> dict[str, Any]:
    arcs = _arcs(topo)
    features = []
    for geom in topo["objects"]["countries"]["geometries"]:
        if geom["type"] == "Polygon":
            coords: Any = [_ring(r, arcs) for r in geom["arcs"]]
        elif geom["type"] == "MultiPolygon":
            coords = [[_ring(r, arcs) for r in poly] for poly in geom["arcs"]]
        else:
            continue
        features.append({"type": "Feature", "properties": {"name": geom.get("properties", {}).get("name", "")},
                         "geometry": {"type": geom["type"], "coordinates": coords}})
    return {"type": "FeatureCollection", "features": features}


def main(argv: list[str]) -> int:
    topo = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(convert(topo), separators=(",", ":")), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
