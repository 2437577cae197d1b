"""The error a source reader raises for a record it cannot turn into a v2 study.

``RecordError`` is defined once, in :mod:`trialfinder.model.study`, and re-exported here so that source
readers (legacy XML conversion) can import it from their own package. One class, not two: callers that
catch ``trialfinder.model.study.RecordError`` also catch conversion failures.
"""

from __future__ import annotations

from trialfinder.model.study import RecordError

__all__ = ["RecordError"]
