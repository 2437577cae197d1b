"""The off-the-shelf baseline the benchmarks compare against: a bare tantivy index of the same texts.

Why a baseline in the same run: this machine's absolute times vary with what else runs on it, so each
benchmark measures trialfinder and this baseline side by side and reports the ratio.

The baseline is what a developer would build in an afternoon with PyPI ``tantivy``: one Python
process reads the studies (v2 JSON), joins their texts (titles, conditions, keywords, interventions,
summary, description, eligibility, outcomes, sponsors) into one ``text`` field with tantivy's English
stemmer, keeps the NCT number as a fast field, and answers top-10 plus the total count. No filters,
facets, synonyms, field weights or geography: that is the work trialfinder does on top.
"""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import tantivy


def _texts(record: dict[str, Any]) -> str:
    p = record.get("protocolSection") or {}
    ident = p.get("identificationModule") or {}
    desc = p.get("descriptionModule") or {}
    cond = p.get("conditionsModule") or {}
    arms = p.get("armsInterventionsModule") or {}
    elig = p.get("eligibilityModule") or {}
    outc = p.get("outcomesModule") or {}
    spons = p.get("sponsorCollaboratorsModule") or {}
    parts: list[str] = [ident.get("briefTitle") or "", ident.get("officialTitle") or "", ident.get("acronym") or ""]
    parts += cond.get("conditions") or []
    parts += cond.get("keywords") or []
    for iv in arms.get("interventions") or []:
        parts.append(iv.get("name") or "")
        parts += iv.get("otherNames") or []
    parts += [desc.get("briefSummary") or "", desc.get("detailedDescription") or "", elig.get("eligibilityCriteria") or ""]
    for kind in ("primaryOutcomes", "secondaryOutcomes"):
        parts += [o.get("measure") or "" for o in outc.get(kind) or []]
    parts.append((spons.get("leadSponsor") or {}).get("name") or "")
    return "\n".join(x for x in parts if x)


def corpus_records(path: Path) -> Iterator[dict[str, Any]]:
    """Studies of a bulk ``ctg-studies.json.zip`` (one JSON document per member) or a JSON-lines file."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".json"):
                    yield orjson.loads(zf.read(info))
    else:
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield orjson.loads(line)


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("text", stored=False, tokenizer_name="en_stem")
    sb.add_unsigned_field("nct", stored=False, fast=True, indexed=True)
    return sb.build()


def build(records: Iterable[dict[str, Any]], directory: Path, heap_mb: int = 512) -> tuple[int, float]:
    """Index the records into ``directory`` (replaced); returns (documents, seconds) for the whole build."""
    t0 = time.perf_counter()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    index = tantivy.Index(_schema(), path=str(directory))
    writer = index.writer(heap_size=heap_mb << 20)
    n = 0
    for rec in records:
        nct = ((rec.get("protocolSection") or {}).get("identificationModule") or {}).get("nctId") or "NCT0"
        writer.add_json(orjson.dumps({"text": _texts(rec), "nct": int(nct[3:] or 0)}).decode())
        n += 1
    writer.commit()
    writer.wait_merging_threads()
    return n, time.perf_counter() - t0


class Bare:
    """A searcher over a built baseline index: top-10 and the total count for a user's text."""

    def __init__(self, directory: Path) -> None:
        self.index = tantivy.Index.open(str(directory))
        self.searcher = self.index.searcher()

    def query(self, text: str, limit: int = 10) -> tuple[int, list[int]]:
        words = re.findall(r"\w+", text.lower())
        if not words:
            return 0, []
        q = self.index.parse_query(" ".join(words), ["text"])
        res = self.searcher.search(q, limit, count=True)
        return int(res.count or 0), [int(addr.doc) for _s, addr in res.hits]

    @property
    def num_docs(self) -> int:
        return int(self.searcher.num_docs)
