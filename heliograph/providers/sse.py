"""Server-sent events: split a byte stream into events as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def data_payloads(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield the `data` of each event (lines joined with \\n), as soon as the event's
    terminating blank line has arrived. Comments and other fields are dropped."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            event, buffer = buffer[:end], buffer[end + 2:]
            data = _event_data(event)
            if data is not None:
                yield data
    if buffer.strip():
        data = _event_data(buffer)
        if data is not None:
            yield data


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
