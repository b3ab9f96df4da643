"""Chart specifications for plotly.js (served from the installed `plotly` package).

A page embeds each figure as JSON in a `<script type="application/json">` block, which
the browser never executes; dashboard.js hands it to Plotly.newPlot. Only data is built
here: no HTML, no script.
"""

from __future__ import annotations

from typing import Any

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 56, "r": 16, "t": 8, "b": 40},
    "height": 260,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "xaxis": {"automargin": True},
    "yaxis": {"automargin": True, "rangemode": "tozero"},
    "showlegend": False,
}


def _layout(**overrides: Any) -> dict:
    layout = {**_LAYOUT, **overrides}
    return layout


def bars(labels: list[Any], values: list[float], title: str, horizontal: bool = False,
         money: bool = False) -> dict:
    """One bar per label (horizontal bars for long names such as models or users)."""
    labels = ["(none)" if label is None else str(label) for label in labels]
    trace: dict[str, Any] = {"type": "bar", "name": title}
    if horizontal:  # largest at the top
        trace.update(x=values[::-1], y=labels[::-1], orientation="h")
    else:
        trace.update(x=labels, y=values)
    axis = {"tickprefix": "$"} if money else {}
    layout = _layout(height=max(200, 28 * len(labels) + 60) if horizontal else 260)
    if horizontal:
        layout["xaxis"] = {**layout["xaxis"], **axis}
        layout["yaxis"] = {"automargin": True}
    else:
        layout["yaxis"] = {**layout["yaxis"], **axis}
    return {"data": [trace], "layout": layout}


def lines(x: list[str], series: dict[str, list[float | None]], money: bool = False,
          stacked_bars: bool = False) -> dict:
    """One line (or stacked bar) per series over a shared x axis of time buckets."""
    kind = {"type": "bar"} if stacked_bars else {"type": "scatter", "mode": "lines+markers"}
    data = [{**kind, "name": name, "x": x, "y": ys} for name, ys in series.items()]
    layout = _layout(showlegend=len(series) > 1, legend={"orientation": "h", "y": -0.2})
    if stacked_bars:
        layout["barmode"] = "stack"
    if money:
        layout["yaxis"] = {**layout["yaxis"], "tickprefix": "$"}
    return {"data": data, "layout": layout}


def scatter_series(series: dict[str, dict[str, list]]) -> dict:
    """One line per named series of {"x": times, "y": values} (uneven time steps)."""
    data = [{"type": "scatter", "mode": "lines", "name": name, "x": points["x"],
             "y": points["y"], "line": {"shape": "hv"}} for name, points in series.items()]
    return {"data": data, "layout": _layout(showlegend=True,
                                            legend={"orientation": "h", "y": -0.2})}
