"""The route table: method + path pattern → handler, and prefixes mounted to sub-apps.

Patterns: `{name}` matches one path segment, `{name:path}` the rest of the path (slashes
included). Each pattern is compiled to a regex once, at startup. A path that matches a
route but not its method is a 405 with the methods the table allows there (`Allow`);
a path nothing matches is a 404. Both fall out of the table, so a new route needs no
error handling of its own.

Routes without parameters are also indexed in an exact (method, path) dict: the proxy's
hot `/v1/*` paths are answered by one dict lookup before the table is walked.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from heliograph.errors import MethodNotAllowed, NotFound
from heliograph.types import ASGIApp, Scope

# handler(gateway, request, send); path parameters are in request.path_params.
Handler = Callable[[Any, Any, Any], Awaitable[None]]

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?}")


def compile_path(pattern: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """'/api/v1/users/{user_id:path}' → (regex matching the whole path, parameter names)."""
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    regex, names, position = "^", [], 0
    for match in _PARAM.finditer(pattern):
        regex += re.escape(pattern[position:match.start()])
        name, kind = match.group(1), match.group(2)
        if name in names:
            raise ValueError(f"parameter {name!r} appears twice in {pattern!r}")
        names.append(name)
        # A parameter is never empty: '/users/' is not the user ''.
        regex += f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"
        position = match.end()
    rest = pattern[position:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"malformed parameter in route pattern {pattern!r}")
    return re.compile(regex + re.escape(rest) + "$"), tuple(names)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    params: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, params = compile_path(self.pattern)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "params", params)

    def match_path(self, path: str) -> dict[str, str] | None:
        """The path parameters when the path matches (whatever the method), else None."""
        if not self.params:
            return {} if path == self.pattern else None
        found = self.regex.match(path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class Mount:
    """Everything under prefix goes to app, an ASGI application, with the prefix moved
    from `path` to `root_path` (as ASGI servers do for an app mounted below a prefix)."""

    prefix: str
    app: ASGIApp

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def child_scope(self, scope: Scope) -> Scope:
        """The scope the sub-application sees: its own paths start at '/'."""
        return {**scope, "path": scope["path"][len(self.prefix):] or "/",
                "root_path": scope.get("root_path", "") + self.prefix}


class LazyRoutes:
    """Routes under a few path prefixes whose handlers live in modules imported on the
    first request there (the query API: ~1 MB of analytics code a worker would otherwise
    hold for nothing when it serves only proxy traffic). load() returns the routes; they
    are resolved exactly as if they stood in the table at this place."""

    def __init__(self, prefixes: Iterable[str], load: Callable[[], Iterable[Route]]):
        self.prefixes = tuple(prefixes)
        self._load = load
        self._table: RouteTable | None = None

    def matches(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)

    @property
    def table(self) -> RouteTable:
        if self._table is None:
            routes = tuple(self._load())
            stray = [r.pattern for r in routes if not self.matches(r.pattern)]
            if stray:  # unreachable behind these prefixes: a declaration out of step
                raise ValueError(f"lazy routes outside {self.prefixes}: {stray}")
            self._table = RouteTable(routes)
        return self._table


@dataclass
class Resolved:
    route: Route | None = None
    params: dict[str, str] = field(default_factory=dict)
    mount: Mount | None = None


class RouteTable:
    def __init__(self, entries: Iterable[Route | Mount | LazyRoutes]):
        self.entries: tuple[Route | Mount | LazyRoutes, ...] = tuple(entries)
        self.exact: dict[tuple[str, str], Handler] = {}
        mounts: list[Mount | LazyRoutes] = []
        for entry in self.entries:
            if isinstance(entry, (Mount, LazyRoutes)):
                mounts.append(entry)
            elif not entry.params and not any(m.matches(entry.pattern) for m in mounts):
                # (A route below an earlier mount is the mount's: table order decides.)
                key = (entry.method, entry.pattern)
                if key in self.exact:
                    raise ValueError(f"route {entry.method} {entry.pattern} declared twice")
                self.exact[key] = entry.handler

    def resolve(self, method: str, path: str) -> Resolved:
        """The first route (in table order) matching path and method, or the mount owning
        the path. MethodNotAllowed (with an Allow header) when only the method is wrong,
        NotFound when nothing matches the path."""
        allowed: list[str] = []
        for entry in self.entries:
            if isinstance(entry, Mount):
                if entry.matches(path):
                    return Resolved(mount=entry)
                continue
            if isinstance(entry, LazyRoutes):
                if entry.matches(path):  # the prefix owns the path, as a mount would
                    return entry.table.resolve(method, path)
                continue
            params = entry.match_path(path)
            if params is None:
                continue
            if entry.method == method:
                return Resolved(route=entry, params=params)
            if entry.method not in allowed:
                allowed.append(entry.method)
        if allowed:
            allowed.sort()
            raise MethodNotAllowed(
                f"{method} is not allowed on {path}; use {', '.join(allowed)}",
                headers={"allow": ", ".join(allowed)})
        raise NotFound(f"no route for {method} {path}")
