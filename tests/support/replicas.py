"""The multi-replica soak: several ``suno-mcp serve`` processes on one PostgreSQL and one sandbox.

Shared by ``tests/test_replicas.py`` (a small run in CI) and ``bench/replicas.py`` (the full run by
hand), so the tests do not import the benchmarks. The deployment is the real one, every part its own
process on loopback: a sandbox with injected faults, R replicas of the streamable HTTP server sharing
one database, and many clients that speak raw MCP JSON-RPC over HTTP to a random replica per request.

Each client follows tasks as a model would: ``generate_music`` (a prompt of its own per task; a failed
or unanswered call is sent again unchanged, which the duplicate guard must absorb), then
``get_task_status(wait_seconds=0)`` every few model seconds until the task is finished, now and then
also reading another tenant's task id (which must fail). Halfway through the submits one replica is
killed with SIGKILL and started again on its port; with ``db_restart`` the PostgreSQL server is
stopped (immediate mode, as by a crash) at a share of the submits, kept down a moment and started
again, and the harness measures, per replica, how long after the database accepts connections again
its ``/readyz`` answers 200 and a tool call of the workload succeeds on it. The figures
(:class:`SoakReport`):

- lost: tasks that got an id but never became finished and readable by their owner (goal 0)
- unrecorded: tasks a client got an id for whose submit's ledger row holds no such id at the end,
  e.g. one accepted while the database was down whose journal entry never reached the ledger (goal 0)
- duplicates: paid submits in the sandbox beyond one per distinct request (goal 0)
- cross_leaks: reads of another tenant's task that succeeded (goal 0)
- fetches_per_task: the sandbox's fetch requests naming our tasks, per task
- p50_ms / p99_ms: latency of ``get_task_status(wait_seconds=0)``

Requests speak the per-request envelope protocol revision (no ``initialize``, no session), so any
replica can answer any request; ``protocol=LEGACY_STATELESS`` sends a handshake-era version instead,
for a server in the SDK's stateless mode.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
import httpx
import psycopg

from suno_mcp.sandbox import account_of
from tests.support.postgres import PostgresServer, stopped
from tests.support.processes import free_port, stop_process
from tests.support.stdio_session import SCRIPT

MODERN_PROTOCOL = "2026-07-28"  # the per-request envelope: every request carries its own _meta
LEGACY_STATELESS = "2025-11-25"
READY_LIMIT_S = 30.0
CALL_TIMEOUT_S = 15.0
SUBMIT_ATTEMPTS = 60
BACKOFF_S = (0.05, 0.5)
# The sandbox's default times (model seconds): the server is told them, scaled to the speed.
PREVIEW_S, COMPLETE_S = 30.0, 120.0
_POLL_S = 0.05
# The readiness probe just before the database stops waits at most this long: the stop must land
# where it was asked, and the replica killed at the same moment may still be starting.
BEFORE_LIMIT_S = 5.0
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|'[^']*'")


@dataclass(frozen=True)
class SoakSpec:
    """The deployment and the workload of one run."""

    replicas: int = 3
    tenants: int = 5
    tasks: int = 500
    clients: int = 200
    speed: float = 10.0
    faults: str = "500:0.1,429:0.05,drop:0.05"
    kill: bool = True
    db_restart: bool = False  # stop and start the PostgreSQL server (needs its PostgresServer)
    db_restart_at: float = 0.5  # share of the tasks with an id when the database goes down
    db_down_s: float = 2.0  # real seconds the database stays down
    # How long after the database's return the harness waits for a replica's readiness before it
    # counts it as not back (the goal is 10 s; the bench prints the times against it).
    back_limit_s: float = 60.0
    team: bool = True  # each tenant pays with its own key; False: one server-wide key
    poll_every_s: float = 10.0  # model seconds between one client's status reads
    cross_read_share: float = 0.1  # of status reads that also try another tenant's task
    protocol: str = MODERN_PROTOCOL
    seed: int = 16

    @property
    def keys(self) -> list[str]:
        return [f"bench-key-{i + 1}" for i in range(self.tenants)]

    def follow_limit_s(self) -> float:
        """How long (real seconds) a task may take from its id to finished before it counts as lost."""
        return 60.0 + 20 * COMPLETE_S / self.speed


@dataclass
class SoakReport:
    """What a run measured (see the module docstring)."""

    replicas: int
    tenants: int
    tasks: int
    clients: int
    team: bool
    with_id: int = 0
    complete: int = 0
    failed: int = 0
    unknown: int = 0  # the guard knows the request was sent but not whether the upstream took it
    refused: int = 0  # no id after every attempt
    lost: int = 0
    paid_submits: int = 0
    distinct_paid: int = 0
    duplicates: int = 0
    paid_without_id: int = 0  # paid upstream, but no client ever learned the task id
    cross_reads: int = 0
    cross_leaks: int = 0
    fetches_for_tasks: int = 0
    fetches_total: int = 0
    fetches_per_task: float = 0.0
    reads_per_task: float = 0.0  # the clients' own status reads (a faster server is read more often)
    fetches_per_read: float = 0.0
    faults_fired: int = 0
    status_calls: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    calls_by_replica: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)  # the first answer text of each kind
    killed: int | None = None
    restart_s: float = 0.0
    unrecorded: int = 0  # paid upstream, but no ledger row holds the task id at the end
    adopted_rows: int = 0  # ledger rows of ours made by adopting an id (not by the submit itself)
    journal_left: int = 0  # lines still in the replicas' journal files at the end
    db_restarted: bool = False
    db_down_s: float = 0.0  # from the stop until the database accepted connections again
    db_stopped_at: int = 0  # tasks with an id when it stopped (the probe before it takes a while)
    ready_back_s: dict[int, float | None] = field(default_factory=dict)  # /readyz 200, per replica
    # The same probe just before the database went down (None: not within BEFORE_LIMIT_S), what
    # readiness takes under this load alone.
    ready_before_s: dict[int, float | None] = field(default_factory=dict)
    call_back_s: dict[int, float | None] = field(default_factory=dict)  # first tool call that succeeded
    # Why /readyz said 503 after the database's return, per reason, over every replica's probes.
    not_ready: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# -- raw MCP over HTTP -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One tools/call: ``ok`` when the tool returned a result that is not an error."""

    ok: bool
    data: dict[str, Any] | None
    text: str
    failure: str | None  # what went wrong, as a short kind for the error counts


def _rpc_body(request_id: int, tool: str, arguments: dict[str, Any], protocol: str) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if protocol == MODERN_PROTOCOL:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": protocol,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "replica-soak", "version": "1"},
        }
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _rpc_message(response: httpx.Response, request_id: int) -> dict[str, Any] | None:
    """The JSON-RPC answer to ``request_id`` in a JSON or SSE body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if isinstance(message, dict) and message.get("id") == request_id:
                    return message
        return None
    message = response.json()
    return message if isinstance(message, dict) else None


class McpClient:
    """Tool calls as single stateless POSTs, with the caller's key as the bearer credential."""

    def __init__(self, http: httpx.AsyncClient, protocol: str) -> None:
        self._http = http
        self._protocol = protocol
        self._ids = itertools.count(1)

    async def call(self, url: str, key: str, tool: str, arguments: dict[str, Any]) -> Answer:
        request_id = next(self._ids)
        headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": self._protocol,
        }
        if self._protocol == MODERN_PROTOCOL:
            headers |= {"Mcp-Method": "tools/call", "Mcp-Name": tool}
        body = _rpc_body(request_id, tool, arguments, self._protocol)
        try:
            response = await self._http.post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            return Answer(False, None, "", "timeout")
        except httpx.TransportError:
            return Answer(False, None, "", "transport")
        if response.status_code != 200:
            return Answer(False, None, response.text[:200], f"http {response.status_code}")
        try:
            message = _rpc_message(response, request_id)
        except ValueError:
            return Answer(False, None, response.text[:200], "bad body")
        if message is None or "result" not in message:
            return Answer(False, None, json.dumps(message)[:200], "rpc error")
        result = message["result"]
        text = " ".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))
        data = result.get("structuredContent")
        if result.get("isError"):
            return Answer(False, None, text, "tool error")
        return Answer(True, data if isinstance(data, dict) else None, text, None)


# -- the processes -----------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SUNO_MCP_", "GPTPROTO_"))}


def _replica_env(
    spec: SoakSpec, *, sandbox_url: str, database_url: str, data_dir: Path, secret: str
) -> dict[str, str]:
    env = _clean_env() | {
        "GPTPROTO_BASE_URL": sandbox_url,
        "SUNO_MCP_DATABASE_URL": database_url,
        "SUNO_MCP_DATA_DIR": str(data_dir),
        "SUNO_MCP_EXPECTED_PREVIEW_S": f"{PREVIEW_S / spec.speed:g}",
        "SUNO_MCP_EXPECTED_COMPLETE_S": f"{COMPLETE_S / spec.speed:g}",
        # The vendor-protecting ceilings are per second of real time; the sandbox runs faster.
        "SUNO_MCP_MAX_RPS": f"{max(10.0, 10.0 * spec.speed):g}",
        "SUNO_MCP_TENANT_MAX_RPS": f"{max(2.0, 10.0 * spec.speed):g}",
        # The door's caps are tested elsewhere: here every client's call is let in.
        "SUNO_MCP_TENANT_MAX_CALLS": str(max(8, spec.clients)),
        "SUNO_MCP_HTTP_MAX_CALLS": str(max(32, spec.clients)),
        "SUNO_MCP_HTTP_MAX_CONNECTIONS": str(max(256, 2 * spec.clients)),
        "SUNO_MCP_LOG_LEVEL": "WARNING",
    }
    if spec.team:
        env |= {"SUNO_MCP_KEYS": "per-request", "SUNO_MCP_TENANT_SECRET": secret}
    else:
        env["GPTPROTO_API_KEY"] = spec.keys[0]
    return env


@dataclass
class Replica:
    """One ``suno-mcp serve --transport http`` process on a fixed port (kept across a restart)."""

    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        args = [SCRIPT, "serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log, env=self.env
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as when a machine dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def wait_answering(http: httpx.AsyncClient, url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    """Return once ``url`` gives any HTTP answer; raise if the process exits or the limit passes."""
    with anyio.fail_after(READY_LIMIT_S):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode} before answering")
            try:
                await http.get(url, timeout=1.0)
                return
            except httpx.TransportError:
                # A bounded start-up poll: a spawned server has no ready signal to wait on.
                await anyio.sleep(_POLL_S)


@contextlib.contextmanager
def _sandbox_process(spec: SoakSpec, log: IO[bytes]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    args = [SCRIPT, "sandbox", "--port", str(port), "--speed", f"{spec.speed:g}", "--seed", str(spec.seed)]
    if spec.faults:
        args += ["--faults", spec.faults]
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=_clean_env()
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop_process(proc)


@dataclass
class Cluster:
    """The running deployment: the sandbox's URL and the replicas."""

    sandbox_url: str
    replicas: list[Replica]


@contextlib.asynccontextmanager
async def running_cluster(
    spec: SoakSpec, http: httpx.AsyncClient, *, database_url: str, workdir: Path
) -> AsyncIterator[Cluster]:
    """Start the sandbox and the replicas; stop them all on the way out."""
    secret = secrets.token_hex(24)
    with (
        (workdir / "sandbox.log").open("wb") as sandbox_log,
        _sandbox_process(spec, sandbox_log) as (url, sb),
    ):
        await wait_answering(http, f"{url}/_sandbox/stats", sb, "the sandbox")
        replicas = []
        for i in range(spec.replicas):
            data_dir = workdir / f"replica-{i}"
            data_dir.mkdir(exist_ok=True)
            env = _replica_env(
                spec, sandbox_url=url, database_url=database_url, data_dir=data_dir, secret=secret
            )
            replicas.append(Replica(free_port(), env, workdir / f"replica-{i}.log"))
        try:
            for replica in replicas:
                replica.start()
            for i, replica in enumerate(replicas):
                assert replica.proc is not None
                try:
                    await wait_answering(http, replica.url, replica.proc, f"replica {i}")
                except RuntimeError as err:
                    raise RuntimeError(f"{err}; its log ends:\n{replica.log_tail()}") from None
            yield Cluster(url, replicas)
        finally:
            for replica in replicas:
                replica.stop()


# -- the workload --------------------------------------------------------------------------------


@dataclass
class _Tally:
    """What the clients saw, filled in as they go."""

    spec: SoakSpec
    ids: dict[int, str] = field(default_factory=dict)  # task index -> task id
    owner_of: dict[str, int] = field(default_factory=dict)  # task id -> tenant index
    outcome: dict[int, str] = field(default_factory=dict)  # complete/failed/unknown/refused/lost
    latencies: list[float] = field(default_factory=list)
    cross_reads: int = 0
    cross_leaks: int = 0
    calls_by_replica: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    half: anyio.Event = field(default_factory=anyio.Event)
    db_due: anyio.Event = field(default_factory=anyio.Event)
    db_back_at: float | None = None  # time.monotonic() when the database accepted connections again
    first_ok_after_db: dict[int, float] = field(default_factory=dict)  # port -> monotonic time


class _Workload:
    """C clients working through N tasks over the cluster's replicas."""

    def __init__(self, spec: SoakSpec, cluster: Cluster, mcp: McpClient, run_tag: str) -> None:
        self.spec = spec
        self.cluster = cluster
        self.mcp = mcp
        self.tag = run_tag
        self.tally = _Tally(spec)
        self.rng = random.Random(spec.seed)

    def prompt(self, index: int) -> str:
        return f"replica soak {self.tag} song number {index}"

    async def call(self, key: str, tool: str, arguments: dict[str, Any], *, what: str = "") -> Answer:
        replica = self.rng.choice(self.cluster.replicas)
        sent_at = time.monotonic()
        answer = await self.mcp.call(replica.url, key, tool, arguments)
        if answer.failure is None or answer.failure == "tool error":
            self.tally.calls_by_replica[replica.port] += 1
        back_at = self.tally.db_back_at
        # Only a call sent after the database's return: one answered from the journal or memory
        # while it was down says nothing about the replica having found the database again.
        if (
            answer.ok
            and back_at is not None
            and sent_at >= back_at
            and replica.port not in self.tally.first_ok_after_db
        ):
            self.tally.first_ok_after_db[replica.port] = time.monotonic()
        if answer.failure is not None:
            # Tool errors apart by what they say (the SDK's prefix and ids left out).
            said = ""
            if answer.failure == "tool error":
                said = _ID.sub("<id>", answer.text.split(": ", 1)[-1])[:60]
            self.note(f"{what or tool}: {answer.failure}" + (f" ({said})" if said else ""), answer.text)
        return answer

    def note(self, kind: str, text: str) -> None:
        """Count a failure of some kind, keeping the first text it came with."""
        self.tally.errors[kind] += 1
        self.tally.error_samples.setdefault(kind, text[:300])

    async def _pause(self, low: float, high: float) -> None:
        # Pacing between a client's own requests, not a wait for something to happen.
        await anyio.sleep(self.rng.uniform(low, high))

    async def submit(self, index: int, key: str) -> str | None:
        """The task id, or None (the outcome is then recorded as unknown or refused)."""
        arguments = {"description": self.prompt(index), "wait_seconds": 0}
        for attempt in range(SUBMIT_ATTEMPTS):
            answer = await self.call(key, "generate_music", arguments)
            data = answer.data or {}
            if answer.ok and isinstance(data.get("task_id"), str):
                return str(data["task_id"])
            if answer.ok and data.get("status") == "unknown":
                self.tally.outcome[index] = "unknown"
                return None
            await self._pause(BACKOFF_S[0], min(BACKOFF_S[1], BACKOFF_S[0] * 2**attempt))
        self.tally.outcome[index] = "refused"
        return None

    async def cross_read(self, tenant: int) -> None:
        others = [t for t, owner in self.tally.owner_of.items() if owner != tenant]
        if not others:
            return
        victim = self.rng.choice(others)
        arguments = {"task_id": victim, "wait_seconds": 0}
        answer = await self.call(
            self.spec.keys[tenant], "get_task_status", arguments, what="cross-tenant read"
        )
        if answer.failure in (None, "tool error"):
            self.tally.cross_reads += 1
            if answer.ok:
                self.tally.cross_leaks += 1

    async def follow(self, index: int, tenant: int, task_id: str) -> None:
        spec, key = self.spec, self.spec.keys[tenant]
        interval = spec.poll_every_s / spec.speed
        with anyio.move_on_after(spec.follow_limit_s()):
            while True:
                started = time.perf_counter()
                answer = await self.call(key, "get_task_status", {"task_id": task_id, "wait_seconds": 0})
                if answer.failure in (None, "tool error"):
                    self.tally.latencies.append(time.perf_counter() - started)
                status = (answer.data or {}).get("status")
                error = str((answer.data or {}).get("error") or "")
                if error.startswith("last status check failed"):
                    # The answer came, but the server's own look upstream had failed.
                    self.note(f"get_task_status: poll error ({_ID.sub('<id>', error)[26:80]})", error)
                if answer.ok and status in ("complete", "failed"):
                    self.tally.outcome[index] = str(status)
                    return
                if spec.team and self.rng.random() < spec.cross_read_share:
                    await self.cross_read(tenant)
                await self._pause(0.8 * interval, 1.2 * interval)
        self.tally.outcome[index] = "lost"

    async def one(self, index: int) -> None:
        tenant = index % self.spec.tenants
        task_id = await self.submit(index, self.spec.keys[tenant])
        if task_id is None:
            return
        self.tally.ids[index] = task_id
        self.tally.owner_of[task_id] = tenant
        if len(self.tally.ids) >= self.spec.tasks // 2:
            self.tally.half.set()
        if len(self.tally.ids) >= self.spec.tasks * self.spec.db_restart_at:
            self.tally.db_due.set()
        await self.follow(index, tenant, task_id)

    async def run(self) -> None:
        send, receive = anyio.create_memory_object_stream[int](self.spec.tasks)
        for index in range(self.spec.tasks):
            send.send_nowait(index)
        send.close()

        async def client() -> None:
            async for index in receive:
                await self.one(index)

        with receive:
            async with anyio.create_task_group() as tg:
                for _ in range(self.spec.clients):
                    tg.start_soon(client)


async def _first_of(*events: anyio.Event) -> None:
    """Return as soon as any of ``events`` is set."""
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)


async def _kill_and_restart(
    workload: _Workload, http: httpx.AsyncClient, report: SoakReport, done: anyio.Event
) -> None:
    """After half the submits, SIGKILL one replica and start it again on its port."""
    await _first_of(workload.tally.half, done)
    if done.is_set():
        return
    victim = workload.rng.randrange(len(workload.cluster.replicas))
    replica = workload.cluster.replicas[victim]
    await anyio.to_thread.run_sync(replica.kill)
    started = time.monotonic()
    replica.start()
    assert replica.proc is not None
    await wait_answering(http, replica.url, replica.proc, f"replica {victim} after its restart")
    report.killed = victim
    report.restart_s = round(time.monotonic() - started, 2)


def _accepting(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=1) as db:
            db.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


async def _wait_accepting(url: str) -> None:
    """Return once the database takes a connection and answers (bounded)."""
    with anyio.fail_after(READY_LIMIT_S):
        while not await anyio.to_thread.run_sync(_accepting, url):  # noqa: ASYNC110
            # Another program's server: nothing to wait on but its answer to a connection.
            await anyio.sleep(_POLL_S)


async def _ready_after(
    http: httpx.AsyncClient, replica: Replica, since: float, limit_s: float, why: Counter[str]
) -> float | None:
    """Seconds from ``since`` until the replica's ``/readyz`` answers 200; None past ``limit_s``.
    Every other answer is counted in ``why`` by its reason."""
    url = replica.url.removesuffix("/mcp") + "/readyz"
    with anyio.move_on_after(limit_s):
        while True:
            try:
                answer = await http.get(url, timeout=2.0)
            except httpx.TransportError as err:
                why[type(err).__name__] += 1  # the killed replica may still be starting
            else:
                if answer.status_code == 200:
                    return round(time.monotonic() - since, 2)
                try:
                    why[str(answer.json().get("reason"))] += 1
                except ValueError:
                    why[f"http {answer.status_code}"] += 1
            # A bounded readiness poll, as an orchestrator's probe would do it.
            await anyio.sleep(_POLL_S)
    return None


async def _restart_database(
    workload: _Workload,
    http: httpx.AsyncClient,
    report: SoakReport,
    done: anyio.Event,
    postgres: PostgresServer,
    database_url: str,
) -> None:
    """At ``db_restart_at`` of the tasks, stop PostgreSQL as by a crash, keep it down ``db_down_s``,
    start it again, and time each replica's way back (readiness, and its first good tool call)."""
    await _first_of(workload.tally.db_due, done)
    if done.is_set():
        return
    spec = workload.spec
    replicas = workload.cluster.replicas
    before: Counter[str] = Counter()
    report.ready_before_s = await _all_ready_after(http, replicas, time.monotonic(), BEFORE_LIMIT_S, before)
    stopping = time.monotonic()
    report.db_stopped_at = len(workload.tally.ids)
    with anyio.CancelScope(shield=True):  # the server must be started again whatever happens
        context = stopped(postgres)
        await anyio.to_thread.run_sync(context.__enter__)
        try:
            # The outage itself: how long the replicas live without their database.
            await anyio.sleep(spec.db_down_s)
        finally:
            await anyio.to_thread.run_sync(context.__exit__, None, None, None)
    await _wait_accepting(database_url)
    back_at = time.monotonic()
    workload.tally.db_back_at = back_at
    report.db_restarted = True
    report.db_down_s = round(back_at - stopping, 2)
    why: Counter[str] = Counter()
    report.ready_back_s = await _all_ready_after(http, replicas, back_at, spec.back_limit_s, why)
    report.not_ready = dict(why.most_common())


async def _all_ready_after(
    http: httpx.AsyncClient, replicas: list[Replica], since: float, limit_s: float, why: Counter[str]
) -> dict[int, float | None]:
    """:func:`_ready_after` for every replica at once."""
    ready: dict[int, float | None] = {}

    async def one(i: int) -> None:
        ready[i] = await _ready_after(http, replicas[i], since, limit_s, why)

    async with anyio.create_task_group() as tg:
        for i in range(len(replicas)):
            tg.start_soon(one, i)
    return {i: ready[i] for i in range(len(replicas))}


def _ledger_figures(report: SoakReport, workload: _Workload, database_url: str) -> None:
    """What the shared ledger holds at the end: the tasks a client got an id for whose submit's row
    holds no such id (an accepted task the journal never brought in), and the adopted rows."""
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT request->>'gpt_description_prompt', task_id, request->>'adopted' FROM tasks"
        ).fetchall()
    recorded = {(prompt, task_id) for prompt, task_id, _ in rows if task_id is not None}
    tally = workload.tally
    report.unrecorded = sum(
        1 for index, task_id in tally.ids.items() if (workload.prompt(index), task_id) not in recorded
    )
    report.adopted_rows = sum(1 for _, _, adopted in rows if adopted is not None)


def _journal_left(workdir: Path) -> int:
    return sum(
        1
        for path in workdir.glob("replica-*/journal/*.jsonl")
        for line in path.read_text().splitlines()
        if line.strip()
    )


# -- the figures --------------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(share * 1000) - 1]


def _fill_from_sandbox(report: SoakReport, workload: _Workload, stats: dict[str, Any]) -> None:
    prompts = {workload.prompt(i): i for i in range(workload.spec.tasks)}
    paid: Counter[str] = Counter()
    for key, count in stats["submits_by_fingerprint"].items():
        body = json.loads(key)["body"]
        prompt = body.get("gpt_description_prompt")
        if prompt in prompts:
            paid[prompt] += count
    report.paid_submits = sum(paid.values())
    report.distinct_paid = len(paid)
    report.duplicates = report.paid_submits - report.distinct_paid
    report.paid_without_id = sum(1 for prompt in paid if prompts[prompt] not in workload.tally.ids)
    by_task = stats["fetches_by_task"]
    ids = workload.tally.ids.values()
    report.fetches_for_tasks = sum(by_task.get(task_id, 0) for task_id in ids)
    report.fetches_total = stats["total"]["fetches"]
    report.fetches_per_task = round(report.fetches_for_tasks / max(1, len(ids)), 2)
    report.reads_per_task = round(report.status_calls / max(1, len(ids)), 2)
    report.fetches_per_read = round(report.fetches_for_tasks / max(1, report.status_calls), 2)
    report.faults_fired = sum(stats["faults_fired"].values())
    # Every paid submit of ours is under one of our tenants' accounts.
    ours = {account_of(k) for k in workload.spec.keys}
    assert set(stats["accounts"]) <= ours, "the sandbox saw a key no tenant of this run has"


def _report(spec: SoakSpec, workload: _Workload, stats: dict[str, Any], report: SoakReport) -> None:
    tally = workload.tally
    outcomes = Counter(tally.outcome.values())
    report.with_id = len(tally.ids)
    report.complete, report.failed = outcomes["complete"], outcomes["failed"]
    report.unknown, report.refused, report.lost = outcomes["unknown"], outcomes["refused"], outcomes["lost"]
    report.cross_reads, report.cross_leaks = tally.cross_reads, tally.cross_leaks
    report.status_calls = len(tally.latencies)
    report.p50_ms = round(1000 * _percentile(tally.latencies, 0.5), 1)
    report.p99_ms = round(1000 * _percentile(tally.latencies, 0.99), 1)
    ports = [r.port for r in workload.cluster.replicas]
    report.calls_by_replica = {i: tally.calls_by_replica[p] for i, p in enumerate(ports)}
    report.errors = dict(tally.errors.most_common())
    report.error_samples = dict(tally.error_samples)
    if tally.db_back_at is not None:
        back_at = tally.db_back_at
        firsts = {i: tally.first_ok_after_db.get(p) for i, p in enumerate(ports)}
        report.call_back_s = {i: None if t is None else round(t - back_at, 2) for i, t in firsts.items()}
    _fill_from_sandbox(report, workload, stats)


async def run_replica_soak(
    spec: SoakSpec, *, database_url: str, workdir: Path, postgres: PostgresServer | None = None
) -> SoakReport:
    """Run one soak against a fresh deployment and return its figures. ``postgres`` is the server
    holding ``database_url``: a run with ``db_restart`` stops and starts it."""
    if spec.db_restart and postgres is None:
        raise ValueError("a run with db_restart needs the PostgresServer to restart")
    started = time.monotonic()
    report = SoakReport(spec.replicas, spec.tenants, spec.tasks, spec.clients, spec.team)
    limits = httpx.Limits(max_connections=spec.clients + 16, max_keepalive_connections=spec.clients)
    timeout = httpx.Timeout(CALL_TIMEOUT_S, connect=2.0)
    async with (
        httpx.AsyncClient(limits=limits, timeout=timeout) as http,
        # The readiness probes on a client of their own: in the clients' pool of 200 busy
        # connections a probe would time the harness's queue, not the replica.
        httpx.AsyncClient(timeout=timeout) as probe,
        running_cluster(spec, http, database_url=database_url, workdir=workdir) as cluster,
    ):
        workload = _Workload(spec, cluster, McpClient(http, spec.protocol), secrets.token_hex(4))
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            if spec.kill:
                tg.start_soon(_kill_and_restart, workload, http, report, done)
            if spec.db_restart and postgres is not None:
                tg.start_soon(_restart_database, workload, probe, report, done, postgres, database_url)
            await workload.run()
            done.set()
        stats = (await http.get(f"{cluster.sandbox_url}/_sandbox/stats")).json()
        _report(spec, workload, stats, report)
        # Read while the replicas still run: a journal still waiting for the ledger is still theirs.
        await anyio.to_thread.run_sync(_ledger_figures, report, workload, database_url)
        report.journal_left = await anyio.to_thread.run_sync(_journal_left, workdir)
    report.seconds = round(time.monotonic() - started, 1)
    return report
