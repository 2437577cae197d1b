"""Hostile inputs beside good ones: a zip bomb, a member that lies about its size, a 200 MB record.

Each is rejected with file, record and reason while the good records are stored, and the ingest (a real
``trialfinder ingest`` process with two worker processes) stays far below 1 GB of memory: its peak
resident size is read from the kernel (``wait4``), per process.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import orjson
import pytest

from trialfinder.ingest import ingest
from trialfinder.sources import MB, Limits, iter_records
from trialfinder.store import open_store

DATA = Path(__file__).parent / "data"
GOOD = "NCT05631717"
#: Peak resident memory any one ingest process may reach in the test (three processes: well under 1 GB)
MAX_RSS_MB = 320


def _good(nct: str = GOOD) -> dict:
    rec = json.loads((DATA / "NCT05631717.json").read_text(encoding="utf-8"))
    rec = copy.deepcopy(rec)
    rec["protocolSection"]["identificationModule"]["nctId"] = nct
    return rec


def _write_bomb(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """A member of ``size`` spaces, compressed while streaming (never held in memory)."""
    chunk = b" " * MB
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w") as fh:
        for _ in range(size // MB):
            fh.write(chunk)


def _lie_about_size(path: Path, name: str, declared: int) -> None:
    """Patch a member's uncompressed size in its local and central headers (a lying zip)."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        name_len = int.from_bytes(data[central + 28:central + 30], "little")
        if data[central + 46:central + 46 + name_len] == encoded:
            data[central + 24:central + 28] = declared.to_bytes(4, "little")
            local = int.from_bytes(data[central + 42:central + 46], "little")
            data[local + 22:local + 26] = declared.to_bytes(4, "little")
            break
        central = data.find(b"PK\x01\x02", central + 4)
    else:
        raise AssertionError(f"member {name} not found")
    path.write_bytes(bytes(data))


def _big_record_file(path: Path, nct: str, field_mb: int) -> None:
    """A study JSON whose brief summary is ``field_mb`` MB, written in pieces."""
    rec = _good(nct)
    rec["protocolSection"]["descriptionModule"]["briefSummary"] = "@@FIELD@@"
    head, tail = orjson.dumps(rec).split(b"@@FIELD@@")
    with open(path, "wb") as fh:
        fh.write(head)
        piece = b"x" * MB
        for _ in range(field_mb):
            fh.write(piece)
        fh.write(tail)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    with zipfile.ZipFile(d / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{GOOD}.json", orjson.dumps(_good()))
        _write_bomb(zf, "NCT00000009.json", 1024 * MB)  # 1 GB of spaces: about 1 MB compressed
        _write_bomb(zf, "NCT00000008.json", 16 * MB)
    with zipfile.ZipFile(d / "liar.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("NCT00000011.json", orjson.dumps(_good("NCT00000011")))
        _write_bomb(zf, "NCT00000007.json", 64 * MB)
    _lie_about_size(d / "liar.zip", "NCT00000007.json", 20_000)  # says 20 kB, inflates to 64 MB
    _big_record_file(d / "big.json", "NCT00000006", 200)
    with open(d / "mixed.ndjson", "wb") as out:
        out.write(orjson.dumps(_good("NCT00000012")) + b"\n")
        with open(d / "big.json", "rb") as big:
            shutil.copyfileobj(big, out, MB)
        out.write(b"\n" + orjson.dumps(_good("NCT00000013")) + b"\n")
    return d


def test_bombs_and_huge_records_are_rejected_the_rest_kept(hostile: Path, tmp_path: Path) -> None:
    assert (hostile / "bomb.zip").stat().st_size < 3 * MB  # the bomb really is small on disk
    db, errors = tmp_path / "t.sqlite", tmp_path / "rejected.jsonl"
    cmd = [sys.executable, "-m", "trialfinder", "ingest", "--db", str(db), "--errors", str(errors),
           "--workers", "2", *(str(hostile / n) for n in ("bomb.zip", "liar.zip", "big.json", "mixed.ndjson"))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALFINDER_MAX_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    with open_store(db) as store:
        stored = {r["protocolSection"]["identificationModule"]["nctId"] for r in store.iter_records()}
    assert stored == {GOOD, "NCT00000011", "NCT00000012", "NCT00000013"}
    rejected = [json.loads(line) for line in errors.read_text().splitlines()]
    by_where = {(Path(r["file"]).name, r["entry"]): r for r in rejected}
    bomb = by_where[("bomb.zip", "NCT00000009.json")]
    assert bomb["nct_id"] == "NCT00000009" and "ratio" in bomb["reason"] and "zip bomb" in bomb["reason"]
    assert "ratio" in by_where[("bomb.zip", "NCT00000008.json")]["reason"]  # 16 MB of spaces, too
    assert "more than its declared 20,000 bytes" in by_where[("liar.zip", "NCT00000007.json")]["reason"]
    assert "200.0 MB, larger than the 64.0 MB limit for one document" in by_where[("big.json", None)]["reason"]
    line = by_where[("mixed.ndjson", None)]
    assert line["reason"].startswith("line 2: record is 200.0 MB, larger than the 16.0 MB limit")
    assert len(rejected) == 5


#: Runs the ingest in a fresh process and prints its own peak (VmHWM: per address space, so not the
#: size of the pytest process it was forked from, which ru_maxrss would report) and its workers' peak.
PEAK_SCRIPT = """
import json, resource, sys
from trialfinder.cli import main
rc = main(sys.argv[1:])
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": rc, "main_mb": hwm / 1024, "worker_mb": kids / 1024}))
"""


def test_peak_memory_of_a_hostile_ingest_is_bounded(hostile: Path, tmp_path: Path) -> None:
    """The ingest process and each of its two workers peak far below 1 GB together."""
    db = tmp_path / "m.sqlite"
    args = ["ingest", "--db", str(db), "--workers", "2",
            *(str(hostile / n) for n in ("bomb.zip", "liar.zip", "big.json", "mixed.ndjson"))]
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"peak RSS: ingest process {peak['main_mb']:.0f} MB, largest worker {peak['worker_mb']:.0f} MB")
    assert peak["rc"] == 0
    assert 20 < peak["main_mb"] < MAX_RSS_MB and peak["worker_mb"] < MAX_RSS_MB, peak
    assert peak["main_mb"] + 2 * peak["worker_mb"] < 1024, peak


def test_limits_are_configurable(hostile: Path, tmp_path: Path) -> None:
    # a lower record limit rejects the ordinary study too, with the limit in the reason
    with open_store(tmp_path / "a.sqlite") as store:
        result = ingest(store, [hostile / "liar.zip"], limits=Limits(max_record_bytes=1_000))
    reasons = {r.entry: r.reason for r in result.rejections}
    assert "record is" in reasons["NCT00000011.json"] and "0.0 MB limit" in reasons["NCT00000011.json"]
    assert result.counts.added == 0
    # environment, then flags; nonsense is refused with the variable's or flag's name
    assert Limits.from_env({"TRIALFINDER_MAX_RECORD_MB": "2"}).max_record_bytes == 2 * MB
    assert Limits.from_env({"TRIALFINDER_MAX_RATIO": "5"}, max_ratio=7).max_ratio == 7
    with pytest.raises(ValueError, match="TRIALFINDER_MAX_DOCUMENT_MB"):
        Limits.from_env({"TRIALFINDER_MAX_DOCUMENT_MB": "lots"})
    with pytest.raises(ValueError, match="--max-record-mb"):
        Limits.from_env({}, max_record_mb=-1)


def test_cli_flags_reach_the_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trialfinder.cli import main

    padded = tmp_path / "padded.zip"  # a valid study padded with 20 MB of spaces: compresses 1000:1
    with zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("NCT00000003.json", orjson.dumps(_good("NCT00000003")) + b" " * (20 * MB))
    db = tmp_path / "c.sqlite"
    assert main(["ingest", "--db", str(db), str(padded)]) == 0
    assert "padded.zip!NCT00000003.json: NCT00000003: archive member inflates" in capsys.readouterr().err
    # with the ratio limit raised, it gets as far as the record limit
    assert main(["ingest", "--db", str(db), "--max-ratio", "100000", str(padded)]) == 0
    assert "NCT00000003: record is 20.0 MB, larger than the 16.0 MB limit" in capsys.readouterr().err
    assert main(["ingest", "--db", str(db), "--max-ratio", "100000", "--max-record-mb", "32", str(padded)]) == 0
    assert "added 1" in capsys.readouterr().out
    assert main(["ingest", "--db", str(db), "--max-ratio", "0", str(padded)]) != 0
    assert "--max-ratio must be positive" in capsys.readouterr().err


def test_library_reader_and_tar_members_obey_the_limits(tmp_path: Path) -> None:
    good = orjson.dumps(_good())
    tar_path = tmp_path / "t.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        for name, data in (("big/NCT00000005.json", b" " * (3 * MB)), (f"ok/{GOOD}.json", good)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    limits = Limits(max_document_bytes=2 * MB)
    items = list(iter_records([tar_path], limits=limits))
    assert [type(i).__name__ for i in items] == ["Rejection", "SourceRecord"]
    assert "3.0 MB, larger than the 2.0 MB limit" in items[0].reason and items[0].nct_id == "NCT00000005"
    zip_path = tmp_path / "z.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        _write_bomb(zf, "NCT00000004.json", 8 * MB)
        zf.writestr(f"{GOOD}.json", good)
    items = list(iter_records([zip_path]))
    assert [type(i).__name__ for i in items] == ["Rejection", "SourceRecord"]
    assert "ratio" in items[0].reason
