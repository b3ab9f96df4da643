"""genai-prices' bundled data as a compact table of plain lists, the only form costs.py uses.

genai-prices ships its data as ~2,300 pydantic dataclasses: importing them costs a process
~14 MB (pydantic's schemas, the data module's objects) and ~0.3 s. A serve worker needs
only each model's match rules and its per-token rates, so `serve` builds this table once
in a short-lived child process (`python -m heliograph.price_table OUT`), writes it as JSON
into the journal folder and points the workers at it (PRICE_TABLE_ENV); they read the file
without importing genai-prices or pydantic. Without the variable (tests, CLI commands,
the demo) costs.py builds the table in-process, from the same function, so both paths
price identically.

The table (FORMAT):
  {"format": FORMAT, "source": <genai-prices data file's size and mtime>,
   "providers": [[id, model_match, fallback_provider_ids, models], ...]}
  models: [[model_id, match, prices], ...] as a JSON text of its own, parsed only when
         the provider is first priced (a worker prices a few of the ~50 providers; all
         of them parsed cost ~3 MB a process)
  match: ["equals"|"starts_with"|"ends_with"|"contains"|"regex", text] or
         ["or"|"and", [match, ...]]; texts lower-cased except regexes (matched as given
         against the lower-cased name, as genai-prices does)
  prices: ["fixed", rates] or ["conditional", [[constraint, rates], ...]] in the data's order
  rates: [input, output, cache_read, cache_write, reasoning, per_request, tiers], USD per
         token (per request for per_request); cache_read/cache_write/reasoning None when the
         model has no own price for them; tiers [[field index, [[start, rate], ...]], ...]
         with the highest start first
  constraint: None, ["start_date", "YYYY-MM-DD"] or ["time_of_day", start, end] (UTC
         "HH:MM:SS.ffffff")
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from collections.abc import MutableMapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

FORMAT = 2
PRICE_TABLE_ENV = "HELIOGRAPH_PRICE_TABLE"
# Rate fields, in a rates list's order; a tier names the field it replaces by index.
RATE_FIELDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
               "output_reasoning_mtok")


def source_stamp() -> str:
    """Identifies the installed genai-prices data without importing it (a new version
    rewrites the file): the table is rebuilt when this changes."""
    spec = find_spec("genai_prices")
    if spec is None or not spec.submodule_search_locations:
        return "missing"
    data = Path(next(iter(spec.submodule_search_locations))) / "data.py"
    try:
        st = data.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _rate(value: Any) -> float | None:
    from genai_prices.types import TieredPrices

    if value is None:
        return None
    if isinstance(value, TieredPrices):
        return float(value.base) / 1e6
    return float(value) / 1e6


def rates(mp: Any) -> list:
    """One genai-prices ModelPrice as a rates list (see costs._Rates for the arithmetic)."""
    from genai_prices.types import TieredPrices

    fields = [_rate(getattr(mp, key, None)) for key in RATE_FIELDS]
    req = getattr(mp, "requests_kcount", None)
    per_request = (float(req.base if isinstance(req, TieredPrices) else req) / 1000
                   if req else 0.0)
    tiers = []
    for index, key in enumerate(RATE_FIELDS):
        value = getattr(mp, key, None)
        if isinstance(value, TieredPrices) and value.tiers:
            steps = sorted(((t.start, float(t.price) / 1e6) for t in value.tiers),
                           reverse=True)
            tiers.append([index, [list(step) for step in steps]])
    return [fields[0] or 0.0, fields[1] or 0.0, fields[2], fields[3], fields[4],
            per_request, tiers]


def _match(clause: Any) -> list:
    from genai_prices import types as t

    if isinstance(clause, t.ClauseEquals):
        return ["equals", clause.equals.lower()]
    if isinstance(clause, t.ClauseStartsWith):
        return ["starts_with", clause.starts_with.lower()]
    if isinstance(clause, t.ClauseEndsWith):
        return ["ends_with", clause.ends_with.lower()]
    if isinstance(clause, t.ClauseContains):
        return ["contains", clause.contains.lower()]
    if isinstance(clause, t.ClauseRegex):
        return ["regex", clause.regex]
    if isinstance(clause, t.ClauseOr):
        return ["or", [_match(c) for c in clause.or_]]
    if isinstance(clause, t.ClauseAnd):
        return ["and", [_match(c) for c in clause.and_]]
    raise ValueError(f"unknown genai-prices match clause {type(clause).__name__}")


def _utc_time(value: _dt.time) -> str:
    if value.tzinfo is not None:
        value = _dt.datetime.combine(_dt.date(1970, 1, 1), value).astimezone(_dt.UTC).time()
    return value.replace(tzinfo=None).isoformat(timespec="microseconds")


def _constraint(constraint: Any) -> list | None:
    from genai_prices import types as t

    if constraint is None:
        return None
    if isinstance(constraint, t.StartDateConstraint):
        return ["start_date", constraint.start_date.isoformat()]
    if isinstance(constraint, t.TimeOfDateConstraint):
        return ["time_of_day", _utc_time(constraint.start_time), _utc_time(constraint.end_time)]
    raise ValueError(f"unknown genai-prices constraint {type(constraint).__name__}")


def _prices(model: Any) -> list:
    from genai_prices.types import ModelPrice

    if isinstance(model.prices, ModelPrice):
        return ["fixed", rates(model.prices)]
    return ["conditional", [[_constraint(cp.constraint), rates(cp.prices)]
                            for cp in model.prices]]


def build() -> dict:
    """The table from the installed genai-prices' bundled data (never a fetched one)."""
    from genai_prices.data import providers

    return {"format": FORMAT, "source": source_stamp(), "providers": [
        [p.id, _match(p.model_match) if p.model_match is not None else None,
         list(p.fallback_model_providers or ()),
         json.dumps([[m.id, _match(m.match), _prices(m)] for m in p.models],
                    separators=(",", ":"))]
        for p in providers]}


def read(path: str | os.PathLike) -> dict | None:
    """The table at path, None if missing, unreadable or not of this format and data."""
    try:
        with open(path, "rb") as fh:
            table = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    if not isinstance(table, dict) or table.get("format") != FORMAT or \
            table.get("source") != source_stamp():
        return None
    return table


def write(path: str | os.PathLike) -> None:
    """Build and write the table atomically (readers never see half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(build(), separators=(",", ":")))
    os.replace(tmp, path)


def prepare(directory: Path, environ: MutableMapping[str, str] | None = None) -> Path | None:
    """For `serve`: the table for the installed data in `directory` (built by a child
    process when missing, so this process never imports genai-prices), and the workers
    pointed at it. None when it cannot be built: workers then build their own."""
    import hashlib
    import subprocess

    env = os.environ if environ is None else environ
    stamp = hashlib.sha256(f"{FORMAT}:{source_stamp()}".encode()).hexdigest()[:16]
    path = directory / f"prices-{stamp}.json"
    if not path.exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for old in directory.glob("prices-*.json"):
                old.unlink(missing_ok=True)  # other genai-prices data: never read again
            done = subprocess.run([sys.executable, "-m", "heliograph.price_table", str(path)],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit status {done.returncode}"
        except (OSError, subprocess.SubprocessError) as exc:
            reason = str(exc)
        if not path.exists():
            print(f"heliograph: could not write the price table ({reason}); each worker "
                  "builds its own", file=sys.stderr)
            return None
    env[PRICE_TABLE_ENV] = str(path)
    return path


if __name__ == "__main__":
    write(sys.argv[1])
