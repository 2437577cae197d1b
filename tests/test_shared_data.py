"""Everything in ``../shared/data/ctgov`` ingests with nothing lost (the foundation issue's "done when").

This is the one test module that reads the shared data beside the repository, because that is its
subject; it is skipped when the data is not there.
"""

from __future__ import annotations

import os
import random
import tarfile
from pathlib import Path

import pytest

from trialfinder.cli import main
from trialfinder.ingest import ingest
from trialfinder.sources import iter_records
from trialfinder.store import open_store

SHARED = Path(os.environ.get("TRIALFINDER_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
CTGOV = SHARED / "data" / "ctgov"

pytestmark = pytest.mark.skipif(not (CTGOV / "legacy-xml").is_dir(), reason=f"no shared data at {CTGOV}")


def _expected_ids() -> set[str]:
    ids = set()
    with tarfile.open(CTGOV / "legacy-xml" / "clinical_study_xml.tar.gz") as tf:
        ids |= {Path(m.name).stem for m in tf.getmembers() if m.isfile() and m.name.endswith(".xml")}
    for item in iter_records([str(CTGOV / "v2")]):
        rec = getattr(item, "record", None)
        assert rec is not None, f"the shared v2 data must all be readable: {item}"
        ids.add(rec["protocolSection"]["identificationModule"]["nctId"])
    return ids


def test_all_shared_data_is_stored_counted_showable_and_reingest_is_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    expected = _expected_ids()
    assert len(expected) > 7800
    db = tmp_path / "all.sqlite"
    with open_store(db) as store:
        first = ingest(store, [CTGOV])
        assert first.counts.rejected == 0, [str(r) for r in first.rejections[:5]]
        assert first.counts.added == len(expected) == store.count()
        stored = {r[0] for r in store.conn.execute("SELECT nct_id FROM studies")}
        assert stored == expected
        again = ingest(store, [CTGOV])
        assert (again.counts.added, again.counts.updated, again.counts.rejected) == (0, 0, 0)
        assert again.counts.unchanged + again.counts.older == first.counts.total
        assert store.stats()["studies"] == len(expected)
    # show-able: a spread of studies from every source, through the command users run
    for nct in ["NCT05631717", "NCT02513394", *random.Random(5).sample(sorted(expected), 40)]:
        assert main(["show", nct, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert nct in out, nct
        # the reference page's sections, in its order
        at = [out.index(h) for h in ("Status and phase", "Study type", "Identifiers", "About")]
        assert at == sorted(at), nct
