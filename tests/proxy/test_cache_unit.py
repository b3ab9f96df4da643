"""ResponseCache: key canonicalisation, store/lookup, streams, buckets, TTL."""

import asyncio
from dataclasses import replace

import orjson
from state_backends import EXPIRY_TTLS_S, ExpiryRound, run

from heliograph.proxy import headers as helicone_headers
from heliograph.proxy.cache import (
    CachedAnswer,
    RecentEntries,
    ResponseCache,
    cache_key,
)
from heliograph.proxy.headers import RequestOptions

PATH = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "temperature": 0.2,
        "messages": [{"role": "user", "content": "hi"}]}
OPTS = RequestOptions(cache_enabled=True)


def key(body=BODY, options=OPTS, org="org", path=PATH, bucket=0):
    return cache_key(org, path, body, options, bucket)


# -- the key ------------------------------------------------------------------------------

def test_key_ignores_key_order_and_formatting():
    reordered = orjson.loads(b'{"messages": [{"content": "hi", "role": "user"}],'
                             b' "temperature": 0.20, "model": "gpt-4o-mini"}')
    assert key(reordered) == key()
    assert len(key()) == 64 and int(key(), 16) >= 0  # sha256 hex


def test_any_difference_in_the_request_misses():
    variants = [dict(BODY, model="gpt-4o"), dict(BODY, temperature=0.3),
                dict(BODY, max_tokens=5), dict(BODY, stream=True),
                dict(BODY, messages=[{"role": "user", "content": "hi!"}])]
    keys = {key(v) for v in variants} | {key()}
    assert len(keys) == len(variants) + 1


def test_key_includes_organization_path_seed_and_bucket():
    base = key()
    assert key(org="other") != base
    assert key(path="/v1/embeddings") != base
    assert key(options=replace(OPTS, cache_seed="s1")) != base
    assert key(options=replace(OPTS, cache_seed="s1")) == key(
        options=replace(OPTS, cache_seed="s1"))
    assert key(bucket=1) != base


def test_ignore_keys_from_the_header_in_both_spellings():
    body_a = dict(BODY, user="alice", metadata={"trace": 1})
    body_b = dict(BODY, user="bob", metadata={"trace": 2})
    for spelling in ("user,metadata", '"user","metadata"', ' "user" , metadata '):
        options = helicone_headers.parse({"helicone-cache-enabled": "true",
                                          "helicone-cache-ignore-keys": spelling})
        assert options.cache_ignore_keys == ["user", "metadata"]
        assert key(body_a, options) == key(body_b, options) == key(BODY, options)
    assert key(body_a) != key(body_b)  # without the header they differ
    # Top level only: a nested "user" is part of the request.
    nested = dict(BODY, messages=[{"role": "user", "content": "hi", "user": "x"}])
    ignoring = replace(OPTS, cache_ignore_keys=["user"])
    assert key(nested, ignoring) != key(BODY, ignoring)


def test_answer_round_trips_through_its_encoding():
    answer = CachedAnswer(200, {"content-type": "application/json"}, body=b'{"a":1}\xff',
                          model="m", provider="openai", usage={"total_tokens": 3})
    assert CachedAnswer.decode(answer.encode(), 4) == replace(answer, bucket_index=4)


# -- over a real store ---------------------------------------------------------------------

def with_cache(backend, fn):
    async def go():
        cache = ResponseCache(backend.open())
        try:
            return await fn(cache)
        finally:
            await cache.drain()
            await cache.state.close()
    return run(go())


def test_store_then_hit_json_and_stream(backend):
    json_answer = CachedAnswer(200, {"content-type": "application/json"},
                               body=b'{"choices":[]}', model="gpt-4o-mini",
                               provider="openai", usage={"total_tokens": 12})
    stream_body = dict(BODY, stream=True)
    events = [b'{"choices":[{"delta":{"content":"he"}}]}',
              b'{"choices":[{"delta":{"content":"llo"}}]}']
    stream_answer = CachedAnswer(200, {"content-type": "text/event-stream"}, events=events)

    async def fn(cache):
        miss = await cache.lookup("org", PATH, BODY, OPTS)
        assert await cache.store("org", PATH, BODY, OPTS, json_answer) == 0
        cache.store_later("org", PATH, stream_body, OPTS, stream_answer)
        await cache.drain()
        return (miss, await cache.lookup("org", PATH, BODY, OPTS),
                await cache.lookup("org", PATH, stream_body, OPTS),
                await cache.lookup("other-org", PATH, BODY, OPTS))
    miss, hit, stream_hit, other_org = with_cache(backend, fn)
    assert miss is None and other_org is None
    assert hit == json_answer
    assert stream_hit.events == events and stream_hit.body is None


def test_only_successful_answers_are_stored(backend):
    async def fn(cache):
        stored = [await cache.store("org", PATH, BODY, OPTS, CachedAnswer(status, {},
                                                                           body=b"{}"))
                  for status in (500, 429, 400)]
        stored.append(await cache.store("org", PATH, BODY, OPTS, CachedAnswer(200, {})))
        return stored, await cache.lookup("org", PATH, BODY, OPTS)
    assert with_cache(backend, fn) == ([None, None, None, None], None)


def test_expired_entry_misses(backend):
    async def fn(cache):
        for ttl_s in EXPIRY_TTLS_S:  # a longer TTL only if the machine is too slow
            body, short = dict(BODY, user=f"ttl-{ttl_s}"), replace(OPTS, cache_ttl_s=ttl_s)
            expiry = ExpiryRound(ttl_s)
            await cache.store("org", PATH, body, short, CachedAnswer(200, {}, body=b"{}"))
            fresh = await cache.lookup("org", PATH, body, short)
            if expiry.read_in_time():
                break
        await expiry.sleep_past_expiry()
        return fresh, await cache.lookup("org", PATH, body, short)
    fresh, stale = with_cache(backend, fn)
    assert fresh is not None and stale is None


def test_buckets_fill_then_hit_randomly(backend):
    three = replace(OPTS, cache_bucket_max=3)

    async def fn(cache):
        steps = []
        for n in range(3):
            steps.append(await cache.lookup("org", PATH, BODY, three))
            answer = CachedAnswer(200, {}, body=f'{{"n":{n}}}'.encode())
            steps.append(await cache.store("org", PATH, BODY, three, answer))
        hits = [await cache.lookup("org", PATH, BODY, three) for _ in range(30)]
        full = await cache.store("org", PATH, BODY, three, CachedAnswer(200, {}, body=b"{}"))
        return steps, hits, full
    steps, hits, full = with_cache(backend, fn)
    assert steps == [None, 0, None, 1, None, 2]  # misses until all three are filled
    assert all(h is not None for h in hits)
    assert {h.bucket_index for h in hits} == {0, 1, 2}  # 30 draws: all seen (p≈1-1e-5)
    assert all(h.body == f'{{"n":{h.bucket_index}}}'.encode() for h in hits)
    assert full is None  # every bucket taken


def test_concurrent_stores_take_distinct_buckets(backend):
    two = replace(OPTS, cache_bucket_max=2)

    async def fn(cache):
        answers = [CachedAnswer(200, {}, body=f'{{"n":{n}}}'.encode()) for n in range(3)]
        return await asyncio.gather(*(cache.store("org", PATH, BODY, two, a)
                                      for a in answers))
    assert sorted(with_cache(backend, fn), key=lambda i: (i is None, i)) == [0, 1, None]


# -- entries this process already knows ------------------------------------------------------

def test_a_repeated_hit_is_answered_from_memory_not_the_store(backend):
    answer = CachedAnswer(200, {}, body=b'{"n":1}', model="gpt-4o-mini")

    async def fn(writer):
        assert await writer.store("org", PATH, BODY, OPTS, answer) == 0
        reader = ResponseCache(writer.state)        # another process: knows nothing yet
        first_read = await reader.lookup("org", PATH, BODY, OPTS)
        # Spoil the stored entry behind everyone's back. Entries are never rewritten by
        # the gateway, so whoever answers now answers from what it remembered.
        await writer.state.cache_set(key(), b"not an entry", 60)
        newcomer = ResponseCache(writer.state)
        return (first_read, await writer.lookup("org", PATH, BODY, OPTS),
                await reader.lookup("org", PATH, BODY, OPTS),
                await newcomer.lookup("org", PATH, BODY, OPTS))
    first_read, writer_hit, reader_hit, newcomer_hit = with_cache(backend, fn)
    assert first_read == writer_hit == reader_hit == answer
    assert newcomer_hit is None  # it had to read the store, and found it unreadable


def test_a_remembered_entry_expires_when_the_stored_one_does(backend):
    async def fn(writer):
        for ttl_s in EXPIRY_TTLS_S:  # a longer TTL only if the machine is too slow
            body, short = dict(BODY, user=f"ttl-{ttl_s}"), replace(OPTS, cache_ttl_s=ttl_s)
            expiry = ExpiryRound(ttl_s)
            await writer.store("org", PATH, body, short, CachedAnswer(200, {}, body=b"{}"))
            reader = ResponseCache(writer.state)
            fresh = await reader.lookup("org", PATH, body, short)
            if expiry.read_in_time():
                break
        await expiry.sleep_past_expiry()
        return fresh, await reader.lookup("org", PATH, body, short), len(reader.recent)
    fresh, stale, remembered = with_cache(backend, fn)
    assert fresh is not None and stale is None and remembered == 0


def test_recent_entries_keep_within_their_byte_budget_least_recent_first():
    recent = RecentEntries(max_bytes=3 * (1000 + 512))
    entries = {name: CachedAnswer(200, {}, body=b"x" * 1000, expires_at=2e9)
               for name in "abcd"}
    for name in "abc":
        recent.put(name, entries[name])
    assert recent.get("a", now=1e9) is entries["a"]   # "a" is now the most recent
    recent.put("d", entries["d"])                      # over budget: "b" goes
    assert [n for n in "abcd" if recent.get(n, now=1e9)] == ["a", "c", "d"]
    recent.put("e", CachedAnswer(200, {}, body=b"x" * 10_000, expires_at=2e9))
    assert recent.get("e", now=1e9) is None            # larger than the whole budget
    recent.put("f", CachedAnswer(200, {}, body=b"{}"))  # no expiry known: not kept
    assert recent.get("f", now=1e9) is None
    assert recent.get("a", now=3e9) is None and len(recent) == 2  # expired: dropped
