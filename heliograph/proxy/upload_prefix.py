"""The start of a multipart upload, read before its provider is known (the form's
`model` field decides), and replayed to that provider afterwards.

openai-python sends a form's fields before its file; openai-node sends them in the
caller's order, which is usually the file first. So the prefix may hold a whole audio
file: it is kept in memory up to `memory_limit` bytes, then spilled to an anonymous
temporary file, so memory stays bounded whatever the upload's size. The last stretch
(at least TAIL_BYTES, which holds the just-read `model` field) always stays in memory,
where the field can be rewritten (`openai/whisper-1` → `whisper-1`).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO

TAIL_BYTES = 1024 * 1024
READ_BACK = 1024 * 1024


class UploadPrefix:
    def __init__(self, memory_limit: int) -> None:
        self.memory_limit = memory_limit
        self.size = 0
        self._tail: list[bytes] = []
        self._tail_size = 0
        self._spool: IO[bytes] | None = None

    async def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        if self._spool is None and self.size <= self.memory_limit:
            return
        if self._spool is None:
            self._spool = tempfile.TemporaryFile()
        # Spill the oldest chunks, keeping the last TAIL_BYTES (or more) in memory.
        spill: list[bytes] = []
        while len(self._tail) > 1 and self._tail_size - len(self._tail[0]) >= TAIL_BYTES:
            oldest = self._tail.pop(0)
            self._tail_size -= len(oldest)
            spill.append(oldest)
        if spill:
            await asyncio.to_thread(self._spool.write, b"".join(spill))

    @property
    def tail(self) -> bytes:
        return b"".join(self._tail)

    @tail.setter
    def tail(self, value: bytes) -> None:
        self.size += len(value) - self._tail_size
        self._tail, self._tail_size = [value], len(value)

    async def replay(self) -> AsyncIterator[bytes]:
        """Everything added, in order; the spill file is closed (and gone) after."""
        spool, self._spool = self._spool, None
        if spool is not None:
            try:
                await asyncio.to_thread(spool.seek, 0)
                while piece := await asyncio.to_thread(spool.read, READ_BACK):
                    yield piece
            finally:
                spool.close()
        tail, self._tail = self._tail, []
        for chunk in tail:
            yield chunk

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
