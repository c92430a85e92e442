"""The server's default hotwords (--hotwords-file): read at start, and again when it changes.

Each job built looks at the file with one stat on the event loop; the file itself is read, in
a thread, only when its time, size or inode changed. A file that goes missing or stops being
UTF-8 text keeps the words last read, with one warning: an operator's slip must not fail tasks.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from transcriber.config import read_hotwords

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int]


class HotwordsFile:
    def __init__(self, path: Path | None) -> None:
        """Reads the file now: ValueError when it is missing or not UTF-8 text."""
        self.path = path
        self._seen: Stamp | None = None
        self._words: str | None = None
        self._warned = False
        if path is not None:
            # The stamp before the read: an edit between the two is read again next time.
            self._seen = _stamp(path)
            self._words = read_hotwords(path)

    async def words(self) -> str | None:
        """The words for a job starting now: the file's, or the last good ones."""
        if self.path is None:
            return self._words
        try:
            stamp = _stamp(self.path)
            if stamp == self._seen:
                return self._words
            # Seen even when the read fails: a broken file is read again only once it changes.
            self._seen = stamp
            self._words = await asyncio.to_thread(read_hotwords, self.path)
        except ValueError as exc:
            if not self._warned:
                log.warning("%s; jobs keep the hotwords read before", exc)
                self._warned = True
            return self._words
        self._warned = False
        log.info("hotwords_file %s read again", self.path)
        return self._words


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError as exc:
        raise ValueError(f"hotwords_file {path} cannot be read: {exc.strerror or exc}") from exc
    return st.st_mtime_ns, st.st_size, st.st_ino
