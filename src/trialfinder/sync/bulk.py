"""``sync --bulk FILE_OR_URL``: fill the database from the registry's bulk ``ctg-studies.json.zip``.

Why download to a file first: the zip directory is at the end of the archive, and the ingest reads
members in parallel by offset, so it needs a seekable file; a partial download is never ingested (it is
written under a temporary name and renamed only when complete).
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import IO

from trialfinder.ingest import IngestResult, ingest
from trialfinder.sources.ctgov_api import SourceUnavailable, user_agent
from trialfinder.store.base import Store


def fetch_bulk(url: str, target_dir: Path, *, contact: str | None = None, timeout: float = 120.0) -> Path:
    """Download ``url`` into ``target_dir`` (complete or not at all); returns the file's path."""
    name = os.path.basename(url.split("?")[0]) or "ctg-studies.json.zip"
    final = target_dir / name
    part = final.with_suffix(final.suffix + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": user_agent(contact)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, open(part, "wb") as out:  # noqa: S310
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise SourceUnavailable(f"could not download the bulk file {url}: {exc}. Nothing was stored; try "
                                "again later or download it by hand and give its path.", url=url) from None
    os.replace(part, final)
    return final


def load_bulk(store: Store, file_or_url: str, *, work_dir: Path, contact: str | None = None,
              progress: IO[str] | None = None) -> IngestResult:
    """Ingest the bulk archive (downloading it first when given a URL) through the normal ingest."""
    path = file_or_url
    if file_or_url.startswith(("http://", "https://")):
        path = str(fetch_bulk(file_or_url, work_dir, contact=contact))
    elif not Path(file_or_url).exists():
        raise FileNotFoundError(f"no bulk file at {file_or_url}")
    return ingest(store, [path], progress=progress)
