"""The route table on its own: patterns, the first match winning, 404 and 405 with the
allowed methods, and a mounted sub-application seeing the path below its prefix."""

import asyncio

import pytest

from heliograph.errors import MethodNotAllowed, NotFound
from heliograph.routes import LazyRoutes, Mount, Route, RouteTable, compile_path


async def noop(gw, request, send):
    return None


async def other(gw, request, send):
    return None


def test_compile_path_segments_and_rest():
    regex, names = compile_path("/api/v1/users/{user_id:path}")
    assert names == ("user_id",)
    assert regex.match("/api/v1/users/team/alice").group("user_id") == "team/alice"
    assert regex.match("/api/v1/users/") is None
    regex, names = compile_path("/v1/request/{request_id}/feedback")
    assert regex.match("/v1/request/abc/feedback").group("request_id") == "abc"
    assert regex.match("/v1/request/a/b/feedback") is None
    assert compile_path("/a.b")[0].match("/axb") is None  # literal text is escaped
    for bad in ("no-slash", "/x/{a}/{a}", "/x/{a", "/x/{1bad}"):
        with pytest.raises(ValueError):
            compile_path(bad)


def test_resolve_params_404_405_and_exact_index():
    table = RouteTable([Route("POST", "/v1/chat", noop), Route("GET", "/items/{id}", noop),
                        Route("DELETE", "/items/{id}", other),
                        Route("GET", "/items/special", other)])
    assert table.exact == {("POST", "/v1/chat"): noop, ("GET", "/items/special"): other}
    found = table.resolve("DELETE", "/items/42")
    assert found.route.handler is other and found.params == {"id": "42"}
    assert table.resolve("GET", "/items/special").route.handler is noop  # first match wins
    with pytest.raises(MethodNotAllowed) as wrong:
        table.resolve("PUT", "/items/42")
    assert wrong.value.headers == {"allow": "DELETE, GET"}
    with pytest.raises(MethodNotAllowed) as wrong:
        table.resolve("GET", "/v1/chat")
    assert wrong.value.headers == {"allow": "POST"}
    with pytest.raises(NotFound):
        table.resolve("GET", "/nowhere")
    with pytest.raises(ValueError):
        RouteTable([Route("GET", "/x", noop), Route("GET", "/x", other)])


def test_a_mount_owns_its_prefix():
    seen = []

    async def dashboard(scope, receive, send):
        seen.append(scope["path"])

    mount = Mount("/dashboard", dashboard)
    table = RouteTable([Route("GET", "/healthz", noop), mount,
                        Route("GET", "/dashboard/shadowed", other)])
    assert table.exact == {("GET", "/healthz"): noop}  # the mount comes first
    assert table.resolve("GET", "/dashboard/shadowed").mount is mount
    assert table.resolve("GET", "/dashboard/static/app.js").mount is mount
    assert table.resolve("POST", "/dashboard").mount is mount
    with pytest.raises(NotFound):
        table.resolve("GET", "/dashboards")
    child = mount.child_scope({"type": "http", "path": "/dashboard/static/app.js",
                               "root_path": ""})
    assert child["path"] == "/static/app.js" and child["root_path"] == "/dashboard"
    assert mount.child_scope({"path": "/dashboard"})["path"] == "/"
    asyncio.run(mount.app(child, None, None))
    assert seen == ["/static/app.js"]


def test_lazy_routes_load_on_the_first_path_under_their_prefixes():
    loads = []

    def load():
        loads.append(1)
        return [Route("GET", "/api/v1/items/{item_id}", noop), Route("POST", "/q", other),
                Route("GET", "/api/v1/items", other)]

    table = RouteTable([Route("GET", "/v1/models", noop), LazyRoutes(("/api/v1", "/q"), load),
                        Route("GET", "/after", other)])
    # The exact index holds the eager routes only; nothing is loaded to build the table
    # nor to answer paths outside the prefixes.
    assert set(table.exact) == {("GET", "/v1/models"), ("GET", "/after")}
    assert table.resolve("GET", "/after").route.handler is other
    with pytest.raises(NotFound):
        table.resolve("GET", "/api/v2")
    assert loads == []
    found = table.resolve("GET", "/api/v1/items/7")
    assert found.route.handler is noop and found.params == {"item_id": "7"}
    assert table.resolve("GET", "/api/v1/items").route.handler is other
    with pytest.raises(MethodNotAllowed) as refused:
        table.resolve("GET", "/q")
    assert refused.value.headers == {"allow": "POST"}
    with pytest.raises(NotFound):
        table.resolve("GET", "/api/v1/other")
    assert loads == [1]  # loaded once


def test_lazy_routes_refuse_a_route_outside_their_prefixes():
    table = RouteTable([LazyRoutes(("/api/v1",), lambda: [Route("GET", "/elsewhere", noop)])])
    with pytest.raises(ValueError, match="/elsewhere"):
        table.resolve("GET", "/api/v1/x")
