"""Build the bundled sample ``src/trialfinder/data/sample.zip`` from ``../shared/data``.

The sample is what a fresh install works on offline: the reference study NCT05631717, 1,100 recent API v2
studies (most with site coordinates), and about 1,000 legacy-XML studies (those judged in TREC Clinical
Trials 2021 first, so matching can be tried on the sample, then a seeded random choice). Deterministic:
the same inputs give a byte-identical zip.

    python scripts/build_sample.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import random
import tarfile
import zipfile
from pathlib import Path

FIXED_TIME = (2026, 1, 1, 0, 0, 0)
LEGACY_TOTAL = 800


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data, compresslevel=9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src/trialfinder/data/sample.zip"))
    args = ap.parse_args()
    shared = Path(args.shared) / "data"
    v2 = shared / "ctgov" / "v2"
    judged = {line.split()[1] for line in (shared / "benchmarks/trec-2021/qrels.tsv").read_text().splitlines()
              if line and not line.startswith("query")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as zf:
        for name in ("NCT05631717.json", "NCT02513394.json"):
            _add(zf, f"v2/{name}", (v2 / name).read_bytes())
        for rec in json.loads((v2 / "nsclcbench-100-studies.json").read_text()):
            nct = rec["protocolSection"]["identificationModule"]["nctId"]
            _add(zf, f"v2/nsclc/{nct}.json", json.dumps(rec, ensure_ascii=False).encode())
        with tarfile.open(v2 / "studies-2024-1000.tar.gz") as tf:
            for m in sorted(tf.getmembers(), key=lambda m: m.name):
                if m.isfile() and m.name.endswith(".json"):
                    _add(zf, f"v2/2024/{Path(m.name).name}", tf.extractfile(m).read())
        with tarfile.open(shared / "ctgov/legacy-xml/clinical_study_xml.tar.gz") as tf:
            members = sorted((m for m in tf.getmembers() if m.isfile() and m.name.endswith(".xml")),
                             key=lambda m: m.name)
            first = [m for m in members if Path(m.name).stem in judged]
            rest = [m for m in members if Path(m.name).stem not in judged]
            random.Random(2021).shuffle(rest)
            chosen = sorted(first + rest[: max(0, LEGACY_TOTAL - len(first))], key=lambda m: m.name)
            for m in chosen:
                _add(zf, f"legacy/{Path(m.name).name}", tf.extractfile(m).read())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
