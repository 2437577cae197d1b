"""The OpenAPI description matches the server: ``schemathesis run --checks all`` against a real server.

A real uvicorn server (the same HTTP protocol and options ``trialfinder serve`` uses) on loopback serves
the sample database; the schemathesis command line runs every check (status codes, content types,
response schemas and headers, negative data rejected, positive data accepted, ``Allow`` on 405,
unsupported methods, ...) over every operation in ``/openapi.json``, in all its phases (examples,
coverage, fuzzing, stateful). The repository's ``schemathesis.toml`` is its configuration. The number of
examples and the seed are fixed so the run is fast and repeatable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import live_server

from trialfinder.web import Settings, create_app
from trialfinder.web.server import uvicorn_options

ROOT = Path(__file__).resolve().parents[1]
MAX_EXAMPLES = 12
SEED = "20261203"


@pytest.fixture(scope="module")
def server(sample_db_master: Path) -> Iterator[str]:
    settings = Settings(db=str(sample_db_master), auto_load_sample=False, warm_up=False)
    with live_server(create_app(settings), log_level="error", **uvicorn_options(settings)) as (url, _port):
        yield url


def test_description_covers_the_api() -> None:
    paths = create_app(Settings(auto_load_sample=False, warm_up=False)).openapi()["paths"]
    assert {"/api/v2/studies", "/api/v2/studies/{nctId}", "/api/v2/version", "/api/v2/stats/size",
            "/api/v2/studies/metadata", "/api/v2/stats/field/values"} <= set(paths)
    fetch = paths["/api/v2/studies/{nctId}"]["get"]
    [nct] = [p for p in fetch["parameters"] if p["name"] == "nctId"]  # one entry, with its pattern
    assert nct["schema"]["pattern"].startswith("^[Nn][Cc][Tt]")
    assert {"400", "404", "414", "503"} <= set(fetch["responses"])


def test_schemathesis_with_all_checks_passes(server: str) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if exe is None:
        pytest.skip("the schemathesis command is not installed")
    cmd = [exe, "run", f"{server}/openapi.json", "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
           "--seed", SEED, "--no-color", "--request-timeout", "20"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "No issues found" in out or " passed" in out, out[-2000:]
