"""Who is calling: a gateway key, in one of the two Helicone modes.

- Gateway mode: `Authorization: Bearer <gateway key>`; provider keys held by the gateway.
- Bring-your-own-key: `Helicone-Auth: Bearer <gateway key>`, and `Authorization` carries the
  caller's provider key, which is passed upstream as it is.
On /v1/messages the key may also arrive as `x-api-key` (what the Anthropic SDK sends).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from heliograph.errors import Unauthorized
from heliograph.keys import KEY_PREFIX, hash_key

# How long a looked-up key is trusted before the store is asked again; bounds how long a
# revoked key keeps working in a process that already saw it.
KEY_CACHE_TTL_S = 10.0


@dataclass(frozen=True)
class Principal:
    key_id: str
    organization: str
    admin: bool
    # The caller's own provider credential (BYOK), as the header value to send upstream.
    provider_authorization: str | None = None


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return value or None


def _is_gateway_key(value: str, gateway_key: str) -> bool:
    key = _bearer(value) or ""
    return key == gateway_key or key.startswith(KEY_PREFIX)


class Authenticator:
    def __init__(self, store):
        self.store = store
        self._cache: dict[str, tuple[float, object]] = {}

    async def lookup(self, key: str):
        # Cached by the key itself (it is in this process's memory anyway, in the request)
        # so a hit costs no hashing.
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await asyncio.to_thread(self.store.find_key, hash_key(key))
        if row is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + KEY_CACHE_TTL_S, row)
        return row

    async def authenticate(self, headers: dict[str, str], allow_x_api_key: bool = False
                           ) -> Principal:
        helicone_auth = _bearer(headers.get("helicone-auth"))
        authorization = headers.get("authorization")
        if helicone_auth is not None:
            gateway_key = helicone_auth
            provider_auth = authorization if _bearer(authorization) else None
            if provider_auth is None and allow_x_api_key and headers.get("x-api-key"):
                provider_auth = headers["x-api-key"]
            if provider_auth is not None and _is_gateway_key(provider_auth, gateway_key):
                # The gateway key sent twice (or another gateway key): never a provider's
                # key, and never forwarded to one; the call uses the gateway's own keys.
                provider_auth = None
        else:
            gateway_key = _bearer(authorization)
            if gateway_key is None and allow_x_api_key:
                gateway_key = _bearer(headers.get("x-api-key"))
            provider_auth = None
        if gateway_key is None:
            raise Unauthorized("Missing gateway key: send 'Authorization: Bearer <key>' "
                               "(or 'Helicone-Auth: Bearer <key>' with your provider key "
                               "in Authorization)")
        row = await self.lookup(gateway_key)
        if row is None:
            raise Unauthorized("Invalid gateway key")
        return Principal(row.id, row.organization, row.admin, provider_auth)
