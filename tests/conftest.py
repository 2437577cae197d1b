"""Shared fixtures: real SQLite files and a real PostgreSQL 15 server, filled from the bundled sample.

``sample_db_master`` is the sample ingested once per session. In the modules of :data:`BOTH_BACKENDS`
it is parametrised over ``sqlite`` and ``postgresql``, so their tests run against both backends (the
PostgreSQL half skips, with the reason, where no server can be started); elsewhere it is SQLite only.
The PostgreSQL server is a throwaway cluster of this session (:class:`PgCluster`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import free_port

from trialfinder.ingest import ingest, sample_path
from trialfinder.store import open_store

DATA = Path(__file__).parent / "data"

#: Test modules whose ``sample_db_master`` tests run on both backends.
BOTH_BACKENDS = frozenset({"test_search", "test_matching", "test_api_v2", "test_web_pages", "test_ingest",
                           "test_ranking_eval", "test_web_eligibility"})
PG_BIN = Path(os.environ.get("TRIALFINDER_PG_BIN", "/usr/lib/postgresql/15/bin"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample_db_master" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_BACKENDS:
        metafunc.parametrize("sample_db_master", ["sqlite", "postgresql"], indirect=True, scope="session")


# -- a throwaway PostgreSQL cluster ------------------------------------------------------------------------


class PgCluster:
    """A PostgreSQL 15 cluster in a temporary directory, on loopback only, trust authentication.

    Run as the ``postgres`` user when we are root (PostgreSQL refuses to run as root), so its
    directory belongs to that user. Durability settings are off: the tests kill clients, not the server.
    """

    def __init__(self) -> None:
        self.as_postgres = os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="trialfinder-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.counter = 0
        if self.as_postgres:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                   "-E", "UTF8", "--locale=C.UTF-8"])
        self.start()

    def _run(self, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout, cwd=self.base)

    def start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-w", "-t", "60",
                   "-o", opts, "start"], timeout=90)

    def stop(self, mode: str = "fast") -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], timeout=90)

    def url(self, dbname: str = "postgres", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}" + (f"?{query}" if query else "")

    def sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(statement)

    def create_db(self, template: str | None = None) -> str:
        """A new database (optionally a copy of ``template``, which nobody may be connected to)."""
        self.counter += 1
        name = f"t{os.getpid()}_{self.counter}"
        sql = f"CREATE DATABASE {name}" + (f" TEMPLATE {template} STRATEGY FILE_COPY" if template else "")
        for attempt in range(50):  # a template's last sessions may take a moment to go away
            try:
                self.sql(sql)
                return name
            except Exception as exc:  # noqa: BLE001
                if "being accessed" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        return name

    def drop_db(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except Exception:  # noqa: BLE001 - already stopped
            pass
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server of this session, or a skip saying why there is none."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing; scripts/test installs it as root)")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    cache = tempfile.mkdtemp(prefix="trialfinder-pg-cache-")
    old_cache = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = cache  # the text indexes of the test databases
    try:
        cluster = PgCluster()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        pytest.skip(f"could not start a PostgreSQL cluster: {exc} {detail[-500:]}")
    try:
        yield cluster
    finally:
        cluster.close()
        shutil.rmtree(cache, ignore_errors=True)
        if old_cache is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old_cache


def copy_index(src_url: str, dst_url: str) -> None:
    """Copy the derived text index of one PostgreSQL database to another made from it as a template."""
    from trialfinder.store.postgres.config import index_dir, parse_url

    src, dst = index_dir(parse_url(src_url)), index_dir(parse_url(dst_url))
    if src.exists():
        shutil.copytree(src, dst, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def pg_sample_template(pg_cluster: PgCluster) -> str:
    """Name of a database holding the ingested sample that nobody stays connected to (a template)."""
    name = pg_cluster.create_db()
    with open_store(pg_cluster.url(name)) as store:
        result = ingest(store, [sample_path()])
    assert result.counts.rejected == 0, [str(r) for r in result.rejections[:5]]
    return name


@pytest.fixture()
def pg_db(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database."""
    name = pg_cluster.create_db()
    yield pg_cluster.url(name)
    pg_cluster.drop_db(name)


@pytest.fixture()
def pg_sample_db(pg_cluster: PgCluster, pg_sample_template: str) -> Iterator[str]:
    """A private PostgreSQL copy of the sample database (with its text index) that a test may modify."""
    name = pg_cluster.create_db(template=pg_sample_template)
    url = pg_cluster.url(name)
    copy_index(pg_cluster.url(pg_sample_template), url)
    yield url
    pg_cluster.drop_db(name)


# -- the sample database, on either backend ------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_sample_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample ingested once per session into a SQLite file (read-only use)."""
    path = tmp_path_factory.mktemp("sample") / "sample.sqlite"
    with open_store(path) as store:
        result = ingest(store, [sample_path()])
    assert result.counts.rejected == 0, [str(r) for r in result.rejections[:5]]
    return path


@pytest.fixture(scope="session")
def sample_db_master(request: pytest.FixtureRequest) -> Path | str:
    """The bundled sample ingested once per test session (read-only use): a SQLite path, or a
    PostgreSQL URL when parametrised with ``postgresql``."""
    if getattr(request, "param", "sqlite") == "postgresql":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        template = request.getfixturevalue("pg_sample_template")
        name = cluster.create_db(template=template)
        url = cluster.url(name)
        copy_index(cluster.url(template), url)
        return url
    return request.getfixturevalue("sqlite_sample_master")


@pytest.fixture()
def sample_db(sqlite_sample_master: Path, tmp_path: Path) -> Path:
    """A private copy of the SQLite sample database that a test may modify."""
    dst = tmp_path / "sample.sqlite"
    with open_store(sqlite_sample_master) as src:
        src.checkpoint()
        index = src.index_path()
    shutil.copy(sqlite_sample_master, dst)
    if index.exists():  # the derived text index beside it (rebuilt on first use if left out)
        shutil.copytree(index, Path(str(dst) + ".index"))
    return dst
