"""A run killed with SIGKILL at any point leaves a consistent database; re-running completes the job."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trialfinder.index.follow import current_snapshot
from trialfinder.ingest import sample_path
from trialfinder.store import open_store


def _consistent(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = conn.execute("SELECT count(*) FROM studies").fetchone()[0]
        # no child row points at a missing study
        for table in ("conditions", "locations", "sponsors", "interventions", "arms", "identifiers"):
            orphans = conn.execute(
                f"SELECT count(*) FROM {table} WHERE sid NOT IN (SELECT sid FROM studies)").fetchone()[0]
            assert orphans == 0, table
        # locations count matches the per-study counter written in the same transaction
        mismatch = conn.execute(
            "SELECT count(*) FROM studies s WHERE n_locations != "
            "(SELECT count(*) FROM locations l WHERE l.sid = s.sid)").fetchone()[0]
        assert mismatch == 0
    finally:
        conn.close()
    # the text index follows: after a kill it may be behind (never ahead), and the next open catches up
    with open_store(db) as store:
        current = current_snapshot(store)
        assert not current.stale and current.snapshot.num_docs == n
        assert current.snapshot.seq == store.data_seq()
    return n


@pytest.mark.parametrize("delay", [0.8, 1.6])
def test_kill_9_mid_ingest_then_rerun_completes(tmp_path: Path, delay: float) -> None:
    db = tmp_path / "killed.sqlite"
    cmd = [sys.executable, "-m", "trialfinder.cli", "ingest", str(sample_path()), "--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _consistent(db) if db.exists() else 0
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    total = _consistent(db)
    with open_store(db) as store:
        assert store.count() == total
    import zipfile

    with zipfile.ZipFile(sample_path()) as zf:
        expected = len({Path(n).stem for n in zf.namelist() if n.endswith((".json", ".xml"))})
    assert total == expected
    summary = done.stdout.strip().splitlines()[-1]
    assert f"added {expected - partial}," in summary and "rejected 0" in summary
