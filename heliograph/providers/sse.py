"""Server-sent events: split a byte stream into events as they arrive.

Events come in batches, one per upstream read: the pipeline relays each batch with one
`send`, so a read that brings twenty events costs one write to the caller, not twenty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

# The usual event, one `data: ` line and nothing else, is recognised without a line split.
_DATA = b"data: "
_NEXT = b"\n\ndata: "     # one event's end and the next's start


class EventBatches:
    """Per upstream read, the `data` of each event it completed (lines joined with \\n)
    — reads that complete none are not yielded. Comments and other fields are dropped.
    An async iterator class, not an async generator: one runs per stream, and the loop
    tracks every generator in a weak set."""

    __slots__ = ("_chunks", "_rest", "_ended")

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""
        self._ended = False

    def __aiter__(self) -> EventBatches:
        return self

    async def __anext__(self) -> list[bytes]:
        while not self._ended:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._ended = True
                rest, self._rest = self._rest, b""
                batch = payloads([rest]) if rest.strip() else []
                if batch:
                    return batch
                break
            buffer = self._rest + chunk if self._rest else chunk
            if buffer.find(b"\r") >= 0:   # find(), not `in`: see _data_lines
                buffer = buffer.replace(b"\r\n", b"\n")
            cut = self._data_lines(buffer) if buffer.startswith(_DATA) else None
            if cut is None:
                *events, self._rest = buffer.split(b"\n\n")
                cut = payloads(events) if events else None
            if cut:
                return cut
        raise StopAsyncIteration

    def _data_lines(self, buffer: bytes) -> list[bytes] | None:
        """The payloads of a read whose events are all one `data: ` line each (what
        providers send), cut with one split and no step per event; None (nothing
        consumed) for anything else, which `payloads` reads event by event."""
        events = buffer.split(_NEXT)
        last = events[-1]
        if last.endswith(b"\n\n"):
            events[-1] = last[:-2]
            rest = b""
        elif last.find(b"\n") < 0:     # an event not finished yet: kept for the next read
            events.pop()
            rest = last if not events else _DATA + last
        else:
            return None
        if events:
            events[0] = events[0][6:]
            # No newline inside an event: no comment, field or second line. Looked for in
            # the events joined (a copy and a memchr) rather than counted in the buffer:
            # bytes.count tests every byte (5 instructions a byte, 33 k on a 6.6 KB read).
            # find(), not `in`: on Python 3.11 `in` first tries the needle as an integer
            # and builds and drops a TypeError (~1 k instructions).
            if (b"".join(events) if len(events) > 1 else events[0]).find(b"\n") >= 0:
                return None
        self._rest = rest
        return events


def payloads(events: Iterable[bytes]) -> list[bytes]:
    out = []
    for event in events:
        if event.startswith(_DATA) and b"\n" not in event:
            out.append(event[6:])
        else:
            data = _event_data(event)
            if data is not None:
                out.append(data)
    return out


async def translated(batches: AsyncIterator[list[bytes]],
                     translate: Callable[[bytes], list[bytes]]) -> AsyncIterator[list[bytes]]:
    """Each batch's payloads through `translate` (one payload in, any number out), per
    batch; it ends once translate has given b"[DONE]". When translate raises
    (a malformed event), what the batch gave before it is still yielded first."""
    async for batch in batches:
        out: list[bytes] = []
        try:
            for data in batch:
                out += translate(data)
                if out and out[-1] == b"[DONE]":
                    yield out
                    return
        except Exception:
            if out:
                yield out
            raise
        if out:
            yield out


def _event_data(event: bytes) -> bytes | None:
    lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    if not lines:
        return None
    return lines[0] if len(lines) == 1 else b"\n".join(lines)


def frame(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"
