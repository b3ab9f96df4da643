"""With Redis unreachable the gateway still serves: cache lookups miss, rate limits fail
open and say so, and every request is logged."""

import openai
from servers import ADMIN_KEY, Gateway, free_port


def test_requests_are_served_while_redis_is_down(upstream, tmp_path):
    gw = Gateway(tmp_path, upstream.url, f"sqlite:///{tmp_path / 'h.db'}",
                 env={"HELIOGRAPH_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "redis down"}],
                extra_headers={"Helicone-Cache-Enabled": "true",
                               "Helicone-RateLimit-Policy": "1;w=60;s=user",
                               "Helicone-User-Id": "u1"})
            assert raw.parse().choices[0].message.content == "Echo: redis down"
            assert raw.headers["helicone-cache"] == "MISS"
            assert raw.headers["helicone-ratelimit-status"] == "degraded"
            rec = gw.record(raw.headers["helicone-id"])
            assert rec["status"] == 200 and rec["cache"] == "miss"
    finally:
        gw.stop()
