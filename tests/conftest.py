"""Shared fixtures: real SQLite files filled from the bundled sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trialfinder.ingest import ingest, sample_path
from trialfinder.store import open_store

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def sample_db_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample ingested once per test session (read-only use)."""
    path = tmp_path_factory.mktemp("sample") / "sample.sqlite"
    with open_store(path) as store:
        result = ingest(store, [sample_path()])
    assert result.counts.rejected == 0, [str(r) for r in result.rejections[:5]]
    return path


@pytest.fixture()
def sample_db(sample_db_master: Path, tmp_path: Path) -> Path:
    """A private copy of the sample database that a test may modify."""
    dst = tmp_path / "sample.sqlite"
    with open_store(sample_db_master) as src:
        src.checkpoint()
        index = src.index_path()
    shutil.copy(sample_db_master, dst)
    if index.exists():  # the derived text index beside it (rebuilt on first use if left out)
        shutil.copytree(index, Path(str(dst) + ".index"))
    return dst
