"""SSE pass-through: reassemble what the caller receives (for the log), capture usage and
time to first token, and hide the usage we asked for when the caller did not ask.

Per event it does only what relaying needs, byte tests for the usual chunk: a chunk is
parsed only while no content has come yet (time to first token, the answer's id and
model), or when it carries a usage (an object to keep, or a null to take out that is not
where OpenAI puts it). The answer for the log is assembled once, at the end, from the
payloads as they came (one orjson call for all of them), not merged event by event. The
usual text chunk (the first one's shape, told by two slice comparisons) is relayed and
has its text cut out for the log in the same step of one loop (process_batch).
"""

from __future__ import annotations

import orjson

from heliograph.formats.openai import chunk_fields

# `"usage"` only matches a key: inside a JSON string every quote is escaped. Looked for
# with find(), not `in`: on Python 3.11 `in` first tries the needle as an integer and
# builds and drops a TypeError (~1 k instructions each time).
_USAGE = b'"usage"'
# OpenAI's chunks end with the usage, null on every chunk but the usage chunk: the exact
# suffix of a top-level last member (a nested one would be followed by another brace).
_NULL_USAGE_LAST = b',"usage":null}'
_NULL_TAIL = len(_NULL_USAGE_LAST)
# How a text chunk of the learnt shape is relayed: as it came (the caller asked for the
# usage), its null usage cut (last, or before the obfuscation string), or as any chunk
# with no null usage at its end: relayed as is unless it has a usage somewhere.
_AS_IS, _CUT_NULL_LAST, _CUT_NULL_OBFUSCATED, _SCAN = range(4)
# Since 2025 OpenAI adds a random `"obfuscation"` string after the usage of every chunk
# (stream_options.include_obfuscation, on by default): `,"usage":null,"obfuscation":"…"}`.
_NULL_USAGE_OBFUSCATED = b',"usage":null,"obfuscation":"'
_NULL_USAGE = len(b',"usage":null')
_OBFUSCATION_VALUE = len(_NULL_USAGE_OBFUSCATED) - 1   # from the cut to the value's quote
_QUOTE_BRACE = b'"}'
_BACKSLASH = 92
_OBFUSCATION = b',"obfuscation":"'
# Between two payloads in _text_run's join: what separates them in a read (no payload
# of a read of one-line events holds a newline).
_JOIN = b"\n\ndata: "


def _cut_obfuscated_null_usage(payload: bytes) -> bytes | None:
    """The payload without `,"usage":null` when the usage sits where OpenAI puts it today,
    just before a last member `"obfuscation"` (a string of letters and digits) — cut from
    the bytes, as a null usage last is; None for anything else (parsed instead)."""
    # The value: from the last quote but the closing one, which must not be escaped; a
    # value holding a quote of its own has it escaped and fails the comparison.
    if payload[-2:] != _QUOTE_BRACE or payload[-3:-2] == b"\\":
        return None
    at = payload.rfind(b'"', 0, -2) - _OBFUSCATION_VALUE
    if at < 0 or payload[at:at + _OBFUSCATION_VALUE + 1] != _NULL_USAGE_OBFUSCATED:
        return None
    # The brace after the value is the payload's last byte: the members are top-level.
    return payload[:at] + payload[at + _NULL_USAGE:]


def event_object(payload: bytes) -> dict | None:
    """The JSON object an SSE data payload carries; None for anything else (relayed as is)."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


class StreamAccumulator:
    # The learnt text chunk's bytes before its text (its opening quote included), between
    # two texts (the text chunk's end, the events' separator, the next one's start), and
    # after it as relayed: set with the shape (_learn_text_shape), read by _text_run.
    _head = _between = _between_out = _tail_out = b""
    # The usual usage chunk's bytes before its usage, learnt from the usual first chunk
    # (_read_role_only), read by _read_usage_only.
    _usage_start = b""

    def __init__(self, strip_usage: bool, framed: bool = False):
        # True when we added stream_options.include_usage ourselves: the caller must see
        # exactly the stream it asked for, so the usage chunk and "usage": null go.
        self.strip_usage = strip_usage
        # True when what process_batch gives is only framed and joined (OpenAI's renderer,
        # render_batch): then one item may hold several payloads joined as a read holds
        # them (b"\n\ndata: " between two), which _text_run relays with one join.
        self.framed = framed
        self.usage: dict | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.created: int | None = None
        self.saw_content = False
        self.done = False
        self._payloads: list[bytes] = []    # as upstream sent them (completion's fallback)
        # What completion() assembles, in order: a payload it reads, or a list of text
        # chunks' texts (JSON strings without their quotes) cut out while relaying (_run:
        # the list being filled).
        self._log: list[bytes | list[bytes]] = []
        self._run: list[bytes] = []
        # The chunks already parsed (by the id of their payload, which _payloads keeps
        # alive), so completion() does not parse them again.
        self._parsed: dict[int, dict] = {}
        # The usual text chunk's shape, learnt from the first one (_learn_text_shape):
        # where the text starts (_at, _cut), the bytes after it (_tail; with an
        # obfuscation string, only those up to it: _fixed, and _end their length), and
        # how such a chunk is relayed (_relay_as).
        self._tail: bytes | None = None
        self._fixed: bytes | None = None
        self._at = self._cut = self._end = 0
        self._relay_as = _AS_IS

    def process(self, payload: bytes) -> bytes | None:
        """Account for one event; return the payload to forward (maybe rewritten), or None
        to drop it."""
        if payload == b"[DONE]":
            self.done = True
            return payload
        self._payloads.append(payload)
        if not self.saw_content and self.id:
            text = _text_delta(payload)
            if text is not None and text != b'""':
                # The first text, in the usual text chunk (the id came before): no parse;
                # its text is kept for the log and its shape for the next ones.
                self.saw_content = True
                self._run.append(text[1:-1])
                self._learn_text_shape(payload, text)
                return self._relayed(payload)
        if self._run:
            self._log.append(self._run)
            self._run = []
        self._log.append(payload)
        if self.saw_content:
            # The usual chunk once the answer is under way: nothing to read.
            return self._relayed(payload)
        return self._read(payload)

    def process_batch(self, batch: list[bytes]) -> list[bytes]:
        """process() over one read's payloads: chunks before the first content one by one
        (they are parsed), the rest in one loop with no call per chunk."""
        out: list[bytes] = []
        start, count = 0, len(batch)
        while not self.saw_content and start < count:
            kept = self.process(batch[start])
            start += 1
            if self.done:
                return out
            if kept is not None:
                out.append(kept)
        if start == count:
            return out
        rest = batch[start:] if start else batch
        if b"[DONE]" in rest:
            rest = rest[:rest.index(b"[DONE]")]
            self.done = True
        self._payloads += rest
        strip = self.strip_usage
        log, run = self._log, self._run
        # A text chunk of the usual shape is relayed and its text cut out for the log in
        # one step: two slice comparisons tell it (as in completion), and what is cut
        # from it for the caller follows from its shape (_relay_as).
        tail, fixed, at, cut, end = self._tail, self._fixed, self._at, self._cut, self._end
        relay_as = self._relay_as
        tail_at, start_end = end - 1, cut + 1
        if fixed is None and tail is not None and len(rest) > 2:
            # The run of usual text chunks this read leads with, in one step (_text_run);
            # the chunks after it (the finish and usage chunks) go through the loop.
            taken = self._text_run(rest, out)
            if taken:
                rest = rest[taken:]
        for payload in rest:
            if tail is not None:
                if fixed is None:
                    # (_SCAN: no null usage ends the chunk; one before the text is read.)
                    if payload[tail_at:] == tail and payload[at:start_end] == _TEXT_START \
                            and (relay_as != _SCAN or payload.find(_USAGE) < 0):
                        out.append(payload[:-_NULL_TAIL] + b"}"
                                   if relay_as == _CUT_NULL_LAST else payload)
                        run.append(payload[start_end:tail_at])
                        continue
                else:
                    # The obfuscation string's closing quote not escaped (a string that
                    # does not end is relayed as it came, as _cut_obfuscated_null_usage
                    # leaves it).
                    close = payload.rfind(b'"', 0, -2) + 1 - end
                    if payload[close:close + end] == fixed and \
                            payload[at:start_end] == _TEXT_START and \
                            payload[-2:] == _QUOTE_BRACE and payload[-3] != _BACKSLASH \
                            and (relay_as != _SCAN or payload.find(_USAGE) < 0):
                        if relay_as == _CUT_NULL_OBFUSCATED:
                            null = close + end - _OBFUSCATION_VALUE - 1
                            out.append(payload[:null] + payload[null + _NULL_USAGE:])
                        else:
                            out.append(payload)
                        run.append(payload[start_end:close])
                        continue
            elif self.id:
                text = _text_delta(payload)
                if text is not None:    # the first text chunk since the id is known
                    run.append(text[1:-1])
                    self._learn_text_shape(payload, text)
                    tail, fixed, at, cut, end = (self._tail, self._fixed, self._at,
                                                 self._cut, self._end)
                    relay_as = self._relay_as
                    tail_at, start_end = end - 1, cut + 1
                    kept = self._relayed(payload)
                    if kept is not None:
                        out.append(kept)
                    continue
            if run:
                log.append(run)
                run = self._run = []
            log.append(payload)
            if payload.endswith(_NULL_USAGE_LAST):
                out.append(payload[:-_NULL_TAIL] + b"}" if strip else payload)
                continue
            null_cut = _cut_obfuscated_null_usage(payload)
            if null_cut is not None:
                out.append(null_cut if strip else payload)
            elif payload.find(_USAGE) < 0:
                out.append(payload)
            else:
                kept = self._read(payload)
                if kept is not None:
                    out.append(kept)
        return out

    def _text_run(self, rest: list[bytes], out: list[bytes]) -> int:
        """The leading chunks of `rest` up to its last usual text chunk, relayed onto `out`
        and their texts cut out for the log, when every one of them is the learnt text
        chunk with only its text different (the answer's id, model and the bytes around
        the text the same): how many were taken, 0 (nothing done) otherwise. One join and
        one comparison check them all, instead of two slice comparisons a chunk."""
        tail, at, cut, end, relay_as = self._tail, self._at, self._cut, self._end, \
            self._relay_as
        if tail is None:        # (the shape is learnt before a run is looked for)
            return 0
        tail_at, start_end = end - 1, cut + 1
        taken = len(rest)
        # From the end back to the last text chunk (a read ending the stream has its
        # finish and usage chunks after it): the per-chunk test of the loop.
        while taken and not (rest[taken - 1][tail_at:] == tail and
                             rest[taken - 1][at:start_end] == _TEXT_START):
            taken -= 1
        if taken < 2:
            return 0
        run = rest[:taken] if taken < len(rest) else rest
        texts = [payload[start_end:tail_at] for payload in run]
        joined = _JOIN.join(run)
        # Equal only if each chunk is the head, its text and the tail (the text's quotes
        # in both): the lengths line up chunk by chunk, so no other cut of the same bytes
        # can compare equal.
        if joined != self._head + self._between.join(texts) + tail or \
                relay_as == _SCAN and joined.find(_USAGE) >= 0:
            return 0
        if relay_as != _CUT_NULL_LAST:
            if self.framed:
                out.append(joined)
            else:
                out += run
        elif self.framed:
            out.append(self._head + self._between_out.join(texts) + self._tail_out)
        else:
            out += [payload[:-_NULL_TAIL] + b"}" for payload in run]
        self._run += texts
        return taken

    def _relayed(self, payload: bytes) -> bytes | None:
        """What the caller gets of a chunk not parsed for its content (a text chunk read for
        its text, any chunk once the answer is under way): its null usage cut when asked."""
        if payload.endswith(_NULL_USAGE_LAST):
            return payload[:-_NULL_TAIL] + b"}" if self.strip_usage else payload
        cut = _cut_obfuscated_null_usage(payload)
        if cut is not None:
            return cut if self.strip_usage else payload
        if payload.find(_USAGE) < 0:
            return payload
        return self._read(payload)

    def _learn_text_shape(self, payload: bytes, text: bytes) -> None:
        """The shape of the usual text chunk, from the first one (its text cut out by
        _text_delta), so the next ones are told by two slice comparisons. A stream's
        text chunks differ only in their text; where they do not, the comparisons fail
        and the chunk is read as any other. OpenAI's chunks end with a random
        "obfuscation" string: there the bytes after the text are the same only up to
        it (`fixed`), and the text ends where they start, counted back from the
        string's opening quote (the last quote but the closing one)."""
        at = payload.find(_TEXT_START)
        cut = at + _TEXT_QUOTE
        tail = payload[cut + len(text) - 1:]
        end = 1 - len(tail)  # the closing quote kept (_TEXT_ENDS: < 0)
        fixed = None
        relay_as = _CUT_NULL_LAST if tail[-_NULL_TAIL:] == _NULL_USAGE_LAST else _SCAN
        obfuscated = tail.find(_OBFUSCATION)
        if obfuscated > 0 and tail[-2:] == _QUOTE_BRACE and \
                tail.count(b'"', obfuscated) == 4:
            fixed = tail[:obfuscated + len(_OBFUSCATION)]
            end = len(fixed)
            relay_as = _CUT_NULL_OBFUSCATED \
                if fixed[-len(_NULL_USAGE_OBFUSCATED):] == _NULL_USAGE_OBFUSCATED else _SCAN
        if relay_as != _SCAN and not self.strip_usage:
            relay_as = _AS_IS   # the null usage ends the chunk: nothing else to read
        self._tail, self._fixed, self._at, self._cut, self._end = tail, fixed, at, cut, end
        self._relay_as = relay_as
        self._head = payload[:cut + 1]      # the text's opening quote kept
        self._between = tail + _JOIN + self._head
        if relay_as == _CUT_NULL_LAST:
            self._tail_out = tail[:-_NULL_TAIL] + b"}"
            self._between_out = self._tail_out + _JOIN + self._head

    def _read(self, payload: bytes) -> bytes | None:
        """A chunk that must be parsed: before the first content, or carrying a usage."""
        if not self.id:
            kept = self._read_role_only(payload)
            if kept is not None:
                return kept
        elif self._usage_start and payload[:len(self._usage_start)] == self._usage_start \
                and self._read_usage_only(payload):
            return None if self.strip_usage else payload
        chunk = event_object(payload)
        if chunk is None:
            return payload
        self._parsed[id(payload)] = chunk
        if not self.id or not self.saw_content:
            self._read_head(chunk)
        usage = chunk_fields.usage(chunk)   # an odd value is relayed, not read
        if usage:
            self.usage = usage
        if self.strip_usage and "usage" in chunk:
            if usage and not chunk.get("choices"):
                return None
            if usage is None:
                # Cut out of the bytes, as on the chunks that are not parsed.
                if payload.endswith(_NULL_USAGE_LAST):
                    return payload[:-_NULL_TAIL] + b"}"
                cut = _cut_obfuscated_null_usage(payload)
                if cut is not None:
                    return cut
            del chunk["usage"]
            return orjson.dumps(chunk)
        return payload

    def _read_role_only(self, payload: bytes) -> bytes | None:
        """The usual first chunk (the first choice's role, an empty content, nothing else:
        _ROLE_CHOICES) read without its choices: only the members before them are parsed
        (the answer's id, model and creation time), and the log merges the role from a
        mark (_ROLE_ONLY) rather than the parsed chunk. What the caller gets of it; None
        for any other chunk (read whole)."""
        end = _before_obfuscation(payload)
        if end < 0:
            return None
        usage = end - _NULL_USAGE           # where a null usage before it would start
        if payload[usage:end] == _NULL_USAGE_LAST[:-1]:
            end = usage
        for choices in _ROLE_CHOICES:
            start = end - len(choices)
            if payload[start:end] == choices:
                break
        else:
            return None
        head = event_object(payload[:start] + b"}")
        # A head holding a usage or choices of its own is read whole, as is one without
        # an id (Azure's prompt-filter chunk opens with id "").
        if head is None or "usage" in head or "choices" in head:
            return None
        self._take_head(head)
        if not self.id:
            return None
        self._parsed[id(payload)] = _ROLE_ONLY
        # The usage chunk starts with the same members (_read_usage_only).
        self._usage_start = payload[:start] + _USAGE_ONLY
        if not self.strip_usage or end != usage:
            return payload      # as _read relays it: no usage to take out
        return payload[:usage] + payload[usage + _NULL_USAGE:]

    def _read_usage_only(self, payload: bytes) -> bool:
        """The usual usage chunk (the usual first chunk's members, no choices, the usage
        last but for an obfuscation string: `_usage_start` leads it) read by its usage
        alone, whose parse then checks it is JSON to its end; the log has nothing to merge
        from it (_NO_CHOICES). False (nothing done) for any other chunk."""
        end = _before_obfuscation(payload)
        if end < 0:
            return False
        usage = event_object(payload[len(self._usage_start):end])
        if not usage:
            return False
        self.usage = usage
        self._parsed[id(payload)] = _NO_CHOICES
        return True

    def _read_head(self, chunk: dict) -> None:
        """Until the first content: the answer's id and model, and whether this chunk
        is the first content (tool calls count)."""
        if not self.id:     # Azure opens with a prompt-filter chunk whose id is ""
            self._take_head(chunk)
        if not self.saw_content:
            for _index, choice in chunk_fields.choices(chunk):
                delta = chunk_fields.delta(choice)
                if delta.get("content") or delta.get("tool_calls"):
                    self.saw_content = True

    def completion(self) -> dict:
        """The stream as one chat.completion object, for the log.

        Most chunks only add text to the first choice: those are not parsed (a parse
        builds ~15 objects a chunk, most of a stream's logging cost). Their text's JSON
        string is cut out of the bytes (`_text_delta`) and all of them are decoded at
        the end in one call; every other chunk is parsed and merged, in order. The texts
        of chunks relayed by process_batch were cut out then (runs of them in _log);
        the loop below tells the others (chunks processed one by one) the same way."""
        merged: dict[int, _Choice] = {}
        # The first choice's text: JSON strings without their quotes, not decoded yet.
        texts: list[bytes] = []
        # A stream's text chunks differ only in their text: once one is cut out, the next
        # ones are told by two tests, _TEXT_START where it was and the same bytes after
        # the text. A text that ended early (a quote not escaped) makes the decoded list
        # longer, or not decodable: counted in _add_texts.
        at = cut = end = 0
        tail = None
        # OpenAI's chunks end with a random "obfuscation" string: there the bytes after the
        # text are the same only up to it (`fixed`), and the text ends where they start,
        # counted back from the string's opening quote (the last quote but the closing one).
        fixed = None
        parsed = self._parsed
        append = texts.append
        finish_at = self._at if self.id and self._tail is not None else 0
        try:
            for payload in [*self._log, self._run] if self._run else self._log:
                if isinstance(payload, list):   # texts cut out while relaying
                    texts += payload
                    continue
                # Compared as slices: endswith and startswith parse their arguments the
                # old way, and cost more than the slice does.
                if tail is not None:
                    if fixed is None:
                        if payload[end - 1:] == tail and payload[at:cut + 1] == _TEXT_START:
                            append(payload[cut + 1:end - 1])
                            continue
                    else:
                        close = payload.rfind(b'"', 0, -2) + 1 - end
                        if payload[close:close + end] == fixed and \
                                payload[at:cut + 1] == _TEXT_START and \
                                payload[-2:] == _QUOTE_BRACE:
                            append(payload[cut + 1:close])
                            continue
                # A chunk read already (the role chunk, the usage chunk) is merged as it
                # was parsed: looking for text or a finish in its bytes would only scan it.
                chunk = parsed.get(id(payload))
                if chunk is None:
                    # The usual last chunk where the relay's text chunks had their choices:
                    # told by one comparison, not two searches.
                    reason = _finish_only(payload, finish_at) if finish_at > 0 and \
                        payload[finish_at:finish_at + _FINISH_LEN] == _FINISH_START else None
                    text = _text_delta(payload) if self.id and reason is None else None
                    if text is not None:
                        if tail is None:
                            at = payload.find(_TEXT_START)
                            cut = at + _TEXT_QUOTE
                            tail = payload[cut + len(text) - 1:]
                            end = 1 - len(tail)  # the closing quote kept (_TEXT_ENDS: < 0)
                            obfuscated = tail.find(_OBFUSCATION)
                            if obfuscated > 0 and tail[-2:] == _QUOTE_BRACE and \
                                    tail.count(b'"', obfuscated) == 4:
                                fixed = tail[:obfuscated + len(_OBFUSCATION)]
                                end = len(fixed)
                        append(text[1:-1])
                        continue
                    if reason is None and self.id:
                        reason = _finish_only(payload)
                    if reason is not None:      # the usual last chunk: no parse either
                        if texts:
                            _add_texts(merged, texts)
                        into = merged.get(0)
                        if into is None:
                            into = merged[0] = _Choice()
                        if reason != b'""':
                            into.finish_reason = reason[1:-1].decode()
                        continue
                    chunk = event_object(payload)
                    if chunk is None:
                        continue
                if texts:
                    _add_texts(merged, texts)
                if chunk is _NO_CHOICES:    # the usual usage chunk: nothing to merge
                    continue
                if chunk is _ROLE_ONLY:     # the usual first chunk: the first choice's role
                    into = merged.get(0)
                    if into is None:
                        into = merged[0] = _Choice()
                    into.role = "assistant"
                    continue
                self._merge(merged, chunk)
            if texts:
                _add_texts(merged, texts)
        except orjson.JSONDecodeError:  # a cut-out string that is not one: parse them all
            merged = {}
            for chunk in _chunks(self._payloads):
                self._merge(merged, chunk)
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model,
                "choices": [merged[i].message(i) for i in sorted(merged)],
                "usage": self.usage, "stream": True}

    def _take_head(self, chunk: dict) -> None:
        """The answer's id, model and creation time, each only if of its type (a
        provider's chunk of the wrong shape is relayed, never let into the record)."""
        id_, model, created = chunk.get("id"), chunk.get("model"), chunk.get("created")
        self.id = id_ if isinstance(id_, str) else None
        self.model = model if isinstance(model, str) else None
        self.created = created if chunk_fields.is_int(created) else None

    def _merge(self, merged: dict[int, _Choice], chunk: dict) -> None:
        if not self.id and chunk.get("id"):
            self._take_head(chunk)
        for index, choice in chunk_fields.choices(chunk):
            into = merged.get(index)
            if into is None:
                into = merged[index] = _Choice()
            into.merge(choice)


# A chunk whose only choice is the first and whose delta is text alone, as OpenAI (and
# the providers copying it) write it: what follows the text must be one of _TEXT_ENDS.
_TEXT_START = b'"choices":[{"index":0,"delta":{"content":"'
_TEXT_ENDS = (b'},"logprobs":null,"finish_reason":null}]',
              b'},"finish_reason":null}]', b'},"finish_reason":null,"logprobs":null}]')
_TEXT_QUOTE = len(_TEXT_START) - 1   # from _TEXT_START to the text's opening quote
# The usual first chunk's choices, as OpenAI (and the providers copying it) write them:
# the first choice's role, an empty content and nothing else (_read_role_only).
_ROLE_CHOICES = (
    b',"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    b'"logprobs":null,"finish_reason":null}]',
    b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
    b'"finish_reason":null}]',
    b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    b'"finish_reason":null}]')
# What the log merges for such a chunk (StreamAccumulator._parsed): the role alone.
_ROLE_ONLY: dict = {}
# The usual usage chunk: no choices, the usage last (_read_usage_only); nothing to merge.
_USAGE_ONLY = b',"choices":[],"usage":'
_NO_CHOICES: dict = {}


def _before_obfuscation(payload: bytes) -> int:
    """Where a chunk's last members end: before OpenAI's obfuscation string when it ends
    with one (letters and digits, as OpenAI writes it: a JSON string for sure), else at
    its closing brace; -1 for a last string of another kind."""
    if payload[-2:] != _QUOTE_BRACE:
        return len(payload) - 1
    value = payload.rfind(b'"', 0, -2) + 1
    end = value - len(_OBFUSCATION)
    if payload[end:value] != _OBFUSCATION or not payload[value:-2].isalnum():
        return -1
    return end


_FINISH_START = b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"'
_FINISH_LEN = len(_FINISH_START)


def _text_delta(payload: bytes) -> bytes | None:
    """The JSON string (quotes included) of a text-only chunk's text, else None."""
    start = payload.find(_TEXT_START)
    if start < 0:
        return None
    start += len(_TEXT_START) - 1       # the opening quote
    end = payload.find(b'"', start + 1)
    while end > 0 and payload[end - 1] == _BACKSLASH:
        escapes = 1                     # an escaped quote unless the backslash is escaped
        while payload[end - 1 - escapes] == _BACKSLASH:
            escapes += 1
        if escapes % 2 == 0:
            break
        end = payload.find(b'"', end + 1)
    if end < 0 or not payload.startswith(_TEXT_ENDS, end + 1):
        return None
    return payload[start:end + 1]


def _finish_only(payload: bytes, start: int = -1) -> bytes | None:
    """The finish reason (a JSON string) of a chunk that only ends the first choice, as
    OpenAI writes it (`"delta":{}` and nothing else in the choice), else None. `start`:
    where _FINISH_START is when the caller compared it there already."""
    if start < 0:
        start = payload.find(_FINISH_START)
        if start < 0:
            return None
    start += _FINISH_LEN - 1            # the reason's opening quote
    end = payload.find(b'"', start + 1)
    # Compared as a slice: startswith parses its arguments the old way.
    if end < 0 or payload[end:end + 3] != b'"}]':
        return None
    reason = payload[start:end + 1]
    return reason if reason.find(b"\\") < 0 else None


def _add_texts(merged: dict[int, _Choice], texts: list[bytes]) -> None:
    """Decode the cut-out strings (one call) onto the first choice, and empty the list."""
    decoded = orjson.loads(b'["' + b'","'.join(texts) + b'"]')
    if len(decoded) != len(texts):
        raise orjson.JSONDecodeError("a cut-out text held a quote", "", 0)
    texts.clear()
    into = merged.get(0)
    if into is None:
        into = merged[0] = _Choice()
    into.content += filter(None, decoded)      # the empty texts left out


def _chunks(payloads: list[bytes]) -> list[dict]:
    """Every payload that is a JSON object, parsed: all in one call when they all are."""
    try:
        parsed = orjson.loads(b"[" + b",".join(payloads) + b"]")
    except orjson.JSONDecodeError:
        parsed = [event_object(p) for p in payloads]
    return [chunk for chunk in parsed if isinstance(chunk, dict)]


class _Choice:
    """One choice's deltas, merged; text kept in parts and joined once. A member of the
    wrong type (a provider's chunk of the wrong shape, relayed as it came) is left out of
    the logged answer rather than failing the stream."""

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.tool_calls: dict[int, dict] = {}
        self.arguments: dict[int, list[str]] = {}
        self.finish_reason: str | None = None

    def merge(self, choice: dict) -> None:
        delta = chunk_fields.delta(choice)
        if content := chunk_fields.text(delta, "content"):
            self.content.append(content)
        if role := chunk_fields.text(delta, "role"):
            self.role = role
        for index, call, function in chunk_fields.tool_calls(delta):
            slot = self.tool_calls.get(index)
            if slot is None:
                slot = self.tool_calls[index] = {"id": None, "type": "function",
                                                 "function": {"name": "", "arguments": ""}}
                self.arguments[index] = []
            if id_ := chunk_fields.text(call, "id"):
                slot["id"] = id_
            if type_ := chunk_fields.text(call, "type"):
                slot["type"] = type_
            if name := chunk_fields.text(function, "name"):
                slot["function"]["name"] += name
            if arguments := chunk_fields.text(function, "arguments"):
                self.arguments[index].append(arguments)
        if reason := chunk_fields.text(choice, "finish_reason"):
            self.finish_reason = reason

    def message(self, index: int) -> dict:
        message: dict = {"role": self.role,
                         "content": "".join(self.content) if self.content else None}
        if self.tool_calls:
            calls = []
            for i in sorted(self.tool_calls):
                slot = self.tool_calls[i]
                slot["function"]["arguments"] = "".join(self.arguments[i])
                calls.append(slot)
            message["tool_calls"] = calls
        return {"index": index, "message": message, "finish_reason": self.finish_reason}
