"""The official conformance suite's authorization-server scenarios against our sign-in server.

``conformance authorization`` reads our RFC 8414 metadata, then runs an authorization-code grant:
it prints the authorization URL for a person to open and waits for the redirect on a loopback
callback of its own. The person here is scripted: it opens the URL, pastes the sandbox's key on our
sign-in page, and follows the redirect to the suite's callback; the suite then redeems the code at
our token endpoint and judges every step. Each scenario must pass.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.node_tools import CONFORMANCE, node_runtime, node_tool
from tests.support.oauth_flow import signin_server
from tests.support.processes import free_port

pytestmark = [pytest.mark.network, pytest.mark.slow]

SCENARIOS = ("authorization-server-metadata-endpoint", "authorization-code-grant")
RUN_LIMIT_S = 120.0


async def _person(site: Any, authorization_url: str) -> None:
    """Open the URL, sign in on our page, and follow the redirect to the suite's callback."""
    import re

    from tests.support.oauth_flow import GOOD_KEY

    first = await site.http.get(authorization_url)
    assert first.status_code == 302, first.text
    page_url = first.headers["location"]
    page = await site.http.get(page_url)
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert request_id is not None, page.text
    posted = await site.http.post(page_url, data={"request": request_id.group(1), "key": GOOD_KEY})
    assert posted.status_code == 303, posted.text
    async with httpx.AsyncClient() as browser:
        await browser.get(posted.headers["location"])


async def test_the_authorization_server_passes_the_suites_authorization_scenarios(tmp_path: Path) -> None:
    suite = [str(node_runtime(22)), str(node_tool(CONFORMANCE).resolve())]
    port = free_port()
    callback = f"http://127.0.0.1:{port}/callback"
    out = tmp_path / "results"
    async with signin_server(tmp_path / "data") as site:
        registered = await site.register([callback], client_name="conformance suite")
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        command = [
            *suite, "authorization", "--url", site.url, "--client-id", client_id,
            "--resource", site.resource, "--port", str(port), "--output-dir", str(out),
        ]  # fmt: skip
        printed: list[str] = []
        with anyio.fail_after(RUN_LIMIT_S):
            async with await anyio.open_process(command, stderr=subprocess.STDOUT) as process:
                assert process.stdout is not None
                buffer = b""
                async for chunk in process.stdout:
                    buffer += chunk
                    *lines, rest = buffer.split(b"\n")
                    buffer = rest
                    for raw in lines:
                        line = raw.decode(errors="replace").strip()
                        printed.append(line)
                        if line.startswith(site.url + "/authorize?"):
                            await _person(site, line)
                await process.wait()
    verdicts: dict[str, list[dict[str, Any]]] = {}
    for directory in out.iterdir() if out.exists() else ():
        scenario = next(
            (name for name in SCENARIOS if directory.name.startswith(f"authorization-server-{name}-")), None
        )
        assert scenario is not None, f"unexpected result directory {directory.name}"
        verdicts[scenario] = json.loads((directory / "checks.json").read_text())
    report = "\n".join(printed[-40:])
    assert sorted(verdicts) == sorted(SCENARIOS), f"scenarios run: {sorted(verdicts)}\n{report}"
    failed = [c for checks in verdicts.values() for c in checks if c["status"] == "FAILURE"]
    assert not failed, f"{json.dumps(failed, indent=1)[:3000]}\n{report}"
    table = [
        f"{name}: {check['id']} {check['status']}" for name, checks in verdicts.items() for check in checks
    ]
    print(f"conformance {CONFORMANCE[1]} authorization:\n  " + "\n  ".join(table))
