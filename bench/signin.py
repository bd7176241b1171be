"""What sign-in costs a request: an MCP message with an OAuth access token against the same message with
a bearer gptproto key, on one team server (``SUNO_MCP_AUTH=oauth,key``).

A token is looked up in the ledger (its hash, then the tenant's sealed key, opened with AES-GCM) on
every request; a bearer key only has its tenant id computed. Both go through the same door and the
same MCP handling (a ``ping`` in stateless mode, so nothing else differs). Requests alternate between
the two, so the machine's load hits both alike. Prints median and p95 per request and their ratio,
for the SQLite ledger and, with ``--postgres URL``, for a PostgreSQL one.

    .venv/bin/python bench/signin.py [--requests 400] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))

from tests.support.http_app import MCP_HEADERS  # noqa: E402
from tests.support.oauth_flow import GOOD_KEY, signin_server  # noqa: E402

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}


async def _timed(http: httpx.AsyncClient, url: str, credential: str) -> float:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {credential}"}
    started = time.perf_counter()
    answer = await http.post(url, json=PING, headers=headers)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    return elapsed


async def measure(requests: int, database_url: str | None) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as data:
        options: dict[str, Any] = {"database_url": database_url} if database_url else {}
        async with signin_server(Path(data), auth=("oauth", "key"), **options) as site:
            _, tokens = await site.tokens()
            times: dict[str, list[float]] = {"bearer key": [], "access token": []}
            async with httpx.AsyncClient() as http:
                for _ in range(20):  # warm both paths (connections, the ledger's first queries)
                    await _timed(http, site.mcp, GOOD_KEY)
                    await _timed(http, site.mcp, tokens["access_token"])
                for _ in range(requests):
                    times["bearer key"].append(await _timed(http, site.mcp, GOOD_KEY))
                    times["access token"].append(await _timed(http, site.mcp, tokens["access_token"]))
            return times


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL for a second table row")
    args = parser.parse_args()
    rows = [("sqlite", None)] + ([("postgres", args.postgres)] if args.postgres else [])
    print(f"{'ledger':8} {'credential':13} {'median ms':>10} {'p95 ms':>8} {'median ratio':>13}")
    for name, url in rows:
        times = anyio.run(measure, args.requests, url)
        base = statistics.median(times["bearer key"])
        for credential, values in times.items():
            median = statistics.median(values)
            print(
                f"{name:8} {credential:13} {median * 1000:10.2f} {_p95(values) * 1000:8.2f} "
                f"{median / base:13.2f}"
            )


if __name__ == "__main__":
    main()
