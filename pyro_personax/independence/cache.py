"""Result cache of the battery, keyed by a real hash of the pair's data and settings.

causal-learn's own cache hashes ``str(data)`` (numpy's truncated repr), so two
different data sets can share a key. Here the key is SHA-256 over the exact bytes of
both encoded columns, how they are read, the test name, its settings, the seed and a
format version. Results live in an in-process memo (always) and, when ``cache_dir`` is
given, in one small JSON file per key under that folder, so re-running a notebook or
the command line is instant. Failed tests are not cached (they may be transient).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from pyro_personax.independence.encoding import EncodedVariable
from pyro_personax.independence.pairwise import PairOutcome

__all__ = ["ResultCache", "cache_key"]

CACHE_FORMAT = 3  # 2: KCI and Fisher-z p-values from survival functions, none below P_VALUE_FLOOR; 3: RCIT's too
logger = logging.getLogger(__name__)
_MEMO: dict[str, PairOutcome] = {}


def cache_key(test: str, settings: dict, x: EncodedVariable, y: EncodedVariable, seed: int) -> str:
    """SHA-256 hex key of one test on one pair.

    Parameters
    ----------
    test
        Test name.
    settings
        The settings that change this test's result (JSON-serialisable).
    x, y
        Trait and feature over the pair's complete rows.
    seed
        Battery seed.

    Returns
    -------
    str
        64 hex characters.
    """
    h = hashlib.sha256()
    header = {"format": CACHE_FORMAT, "test": test, "settings": settings, "seed": int(seed)}
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(x.digest().encode())
    h.update(y.digest().encode())
    return h.hexdigest()


class ResultCache:
    """In-process memo plus an optional folder of JSON results.

    Parameters
    ----------
    cache_dir
        Folder for the on-disk cache, created if missing; ``None`` = memo only.
    memo
        Also use the in-process memo shared by all batteries of this process.

    Examples
    --------
    >>> cache = ResultCache(None)
    >>> cache.get("0" * 64) is None
    True
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, memo: bool = True):
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        if self.cache_dir is not None:
            if self.cache_dir.exists() and not self.cache_dir.is_dir():
                raise ValueError(f"cache_dir: expected a folder, found the file {self.cache_dir}")
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.memo = memo

    def _path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> PairOutcome | None:
        """The cached outcome of ``key``, or ``None``."""
        if self.memo and key in _MEMO:
            return _MEMO[key]
        if self.cache_dir is None or not self._path(key).is_file():
            return None
        try:
            outcome = PairOutcome(**json.loads(self._path(key).read_text()))
        except (ValueError, TypeError) as err:
            logger.warning("ignoring unreadable cache entry %s: %s", self._path(key), err)
            return None
        if self.memo:
            _MEMO[key] = outcome
        return outcome

    def put(self, key: str, outcome: PairOutcome) -> None:
        """Store ``outcome`` unless it is an error."""
        if outcome.status == "error":
            return
        if self.memo:
            _MEMO[key] = outcome
        if self.cache_dir is None:
            return
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(outcome), fh)
        os.replace(tmp, path)

    @staticmethod
    def clear_memo() -> None:
        """Forget every in-process result."""
        _MEMO.clear()
