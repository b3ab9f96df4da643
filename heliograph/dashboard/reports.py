"""Aggregate pages: overview, users, one user, properties, cache, rate limits. Every
number comes from the read side (analytics/): metrics by group, users, summaries."""

from __future__ import annotations

import asyncio

from heliograph.analytics import cache_entries, summaries
from heliograph.dashboard import charts
from heliograph.dashboard._filters import view_filters
from heliograph.dashboard.app import Context, Page, page
from heliograph.errors import BadRequest, NotFound

TOP = 10
TREND_UNITS = ("day", "week", "month", "hour")
# The page's sort names → the read side's (analytics/_users.SORTS).
USER_SORTS = {"requests": "requests", "cost": "cost_usd", "latency": "avg_latency_ms",
              "errors": "error_rate", "last_seen": "last_seen", "user": "user_id"}
USERS_PER_PAGE = 100
MOST_HIT_ENTRIES = 20


def _cost_bars(groups: list[dict], title: str) -> dict:
    top = sorted(groups, key=lambda g: -g["cost_usd"])[:TOP]
    return charts.bars([g["key"] for g in top], [round(g["cost_usd"], 6) for g in top],
                       title, horizontal=True, money=True)


def _choice(value: str | None, allowed: tuple[str, ...] | dict, name: str) -> str:
    default = next(iter(allowed))
    if value is None:
        return default
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


@page()
async def overview(ctx: Context) -> Page:
    view = view_filters(ctx.query, ("trend", "prop"), default_period="7d")
    trend = _choice(view.own.get("trend"), TREND_UNITS, "trend")
    analytics, org, flt = ctx.gw.analytics, ctx.org, view.flt
    names = await ctx.read(summaries.property_names, analytics, org, flt)
    prop = view.own.get("prop") or (names[0]["name"] if names else None)
    queries = [ctx.read(analytics.metrics, org, flt, group) for group in
               (trend, "model", "provider")]
    # Only the chart's top users: metrics?group_by=user_id would sum (and format) every
    # user's histogram, ~0.9 s on 5,000 users over 30 days.
    queries.append(ctx.read(analytics.cost_by_user, org, flt, TOP))
    queries.append(ctx.read(summaries.cache_summary, analytics, org, flt))
    if prop:
        queries.append(ctx.read(analytics.metrics, org, flt, f"property.{prop}"))
    by_time, by_model, by_provider, by_user, cache, *by_prop = await asyncio.gather(*queries)
    total = by_time["total"]
    keys = [g["key"] for g in by_time["data"]]
    return Page("overview.html", {
        "nav": "overview", "view": view, "trend": trend, "trends": TREND_UNITS,
        "total": total, "cache": cache,
        "cost_per_request": total["cost_usd"] / total["requests"] if total["requests"] else None,
        "prop": prop, "property_names": names,
        "charts": {
            "cost_trend": charts.lines(keys, {"cost": [g["cost_usd"] for g in by_time["data"]]},
                                       money=True),
            "requests_trend": charts.lines(keys, {
                "ok": [g["requests"] - g["errors"] for g in by_time["data"]],
                "errors": [g["errors"] for g in by_time["data"]]}, stacked_bars=True),
            "by_model": _cost_bars(by_model["data"], "cost by model"),
            "by_provider": _cost_bars(by_provider["data"], "cost by provider"),
            "by_user": _cost_bars(by_user, "cost by user"),
            **({"by_property": _cost_bars(by_prop[0]["data"], f"cost by {prop}")}
               if by_prop else {}),
        },
    })


@page()
async def users(ctx: Context) -> Page:
    # All time by default: per-user totals are kept for all time (#16 rollups). Sorted
    # and paged by the database (keyset on the sort value and user id).
    view = view_filters(ctx.query, ("sort", "cursor"))
    sort = _choice(view.own.get("sort"), USER_SORTS, "sort")
    found, next_cursor = await ctx.read(ctx.gw.analytics.users_page, ctx.org, view.flt,
                                        USER_SORTS[sort], None, USERS_PER_PAGE,
                                        view.own.get("cursor"))
    sorted_pairs = [*view.pairs, ("sort", sort)]
    return Page("users.html", {
        "nav": "users", "view": view, "sort": sort, "users": found, "sorts": USER_SORTS,
        "next_url": ctx.url("/users", [*sorted_pairs, ("cursor", next_cursor)])
        if next_cursor else None,
        "first_url": ctx.url("/users", sorted_pairs) if view.own.get("cursor") else None})


@page()
async def user(ctx: Context) -> Page:
    user_id = ctx.request.scope["path_params"]["user_id"]
    view = view_filters(ctx.query, default_period="30d")
    flt = view.narrowed(user_id=user_id)
    analytics = ctx.gw.analytics
    found, by_day, by_model = await asyncio.gather(
        ctx.read(analytics.users, ctx.org, flt), ctx.read(analytics.metrics, ctx.org, flt, "day"),
        ctx.read(analytics.user_models, ctx.org, flt))
    if not found:
        raise NotFound(f"no requests from user {user_id!r} in this period")
    keys = [g["key"] for g in by_day["data"]]
    return Page("user.html", {
        "nav": "users", "view": view, "user": found[0], "by_model": by_model,
        "charts": {"cost": charts.lines(keys, {"cost": [g["cost_usd"] for g in by_day["data"]]},
                                        money=True)}})


@page()
async def properties(ctx: Context) -> Page:
    view = view_filters(ctx.query, ("key",), default_period="30d")
    analytics = ctx.gw.analytics
    names = await ctx.read(summaries.property_names, analytics, ctx.org, view.flt)
    chosen = (view.own.get("key") or (names[0]["name"] if names else "")).lower()
    values: list[dict] = []
    if chosen:
        values = (await ctx.read(analytics.metrics, ctx.org, view.flt,
                                 f"property.{chosen}"))["data"]
    values = [v for v in values if v["key"] is not None]
    return Page("properties.html", {
        "nav": "properties", "view": view, "names": names, "chosen": chosen,
        "values": values,
        "charts": {"by_value": _cost_bars(values, f"cost by {chosen}")} if values else {}})


@page()
async def cache(ctx: Context) -> Page:
    view = view_filters(ctx.query, default_period="7d")
    analytics, org = ctx.gw.analytics, ctx.org
    hits = view.narrowed(cache="hit")
    summary, entries, by_day = await asyncio.gather(
        ctx.read(summaries.cache_summary, analytics, org, view.flt),
        ctx.read(cache_entries.cache_entries, analytics, org, view.flt, MOST_HIT_ENTRIES),
        ctx.read(analytics.metrics, org, hits, "day"))
    keys = [g["key"] for g in by_day["data"]]
    return Page("cache.html", {
        "nav": "cache", "view": view, "summary": summary, "entries": entries,
        # An entry's hits on the Requests page: this view's filters and period.
        "hits_filters": [(k, v) for k, v in view.pairs if k not in ("period", "cache")]
        + ([("period", view.period)] if view.period != "custom" else []),
        "charts": {"hits": charts.lines(keys, {"hits": [g["requests"] for g in by_day["data"]]},
                                        stacked_bars=True)}})


@page()
async def ratelimits(ctx: Context) -> Page:
    view = view_filters(ctx.query, default_period="7d")
    analytics, org = ctx.gw.analytics, ctx.org
    latest, events, samples = await asyncio.gather(
        ctx.read(analytics.ratelimits, org, view.flt),
        ctx.read(summaries.rate_limit_events, analytics, org, view.flt),
        ctx.read(summaries.ratelimit_samples, analytics, org, view.flt))
    hours = [row["hour"] for row in events["by_hour"]]
    remaining = {}
    for kind in ("requests", "tokens"):
        series = {name: points for name, points in samples[kind].items()}
        remaining[kind] = charts.scatter_series(series) if series else None
    return Page("ratelimits.html", {
        "nav": "ratelimits", "view": view, "limits": latest["data"], "events": events,
        "charts": {
            "events": charts.lines(hours, {
                "refused by provider": [r["provider_429"] for r in events["by_hour"]],
                "absorbed by retry/fallback": [r["absorbed_429"] for r in events["by_hour"]],
                "refused by gateway policy": [r["gateway_refused"] for r in events["by_hour"]],
            }, stacked_bars=True) if hours else None,
            "remaining_requests": remaining["requests"],
            "remaining_tokens": remaining["tokens"]}})
