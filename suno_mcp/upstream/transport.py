"""The transport to the vendor: authenticated JSON requests with typed errors and retries.

:class:`Upstream` owns the ``Authorization`` header, the retry policy
(:mod:`suno_mcp.upstream.retry`), decoding an answer into JSON or the right
:class:`~suno_mcp.domain.errors.SunoError`, and keeping the key out of every text it hands
on. The ``httpx.AsyncClient`` is injected; this module never builds one per request.

A submit keeps the start of its answer as received (:class:`Answer`, at most
:data:`RAW_ANSWER_MAX` characters, key scrubbed) for the ledger and for a person to read.
What the answers mean is :mod:`suno_mcp.upstream.wire`; the endpoints are
:mod:`suno_mcp.upstream.families`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from suno_mcp import metrics
from suno_mcp.domain.errors import (
    ConfigurationError,
    MalformedResponseError,
    SunoError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    decode_json,
    error_from_response,
    is_error_body,
)
from suno_mcp.upstream.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

SUBMIT_READ_TIMEOUT_S = 60.0
# How much of a submit's answer is kept as received, for the ledger and for a person to read.
RAW_ANSWER_MAX = 2048

NO_KEY_MESSAGE = (
    "No API key is set. Set GPTPROTO_API_KEY to your gptproto key in this server's environment "
    "(the 'env' block of your MCP client's config), then restart the server; or start it with "
    "`suno-mcp serve --sandbox` to try it offline with synthesized audio."
)


@dataclass(frozen=True)
class Answer:
    """A decoded answer and, when asked for, the start of its body as received (key scrubbed)."""

    body: Any
    raw: str | None = None


class Upstream:
    """Authenticated JSON requests to the vendor, with typed errors and retries."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | SecretStr | None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        submit_read_timeout: float = SUBMIT_READ_TIMEOUT_S,
    ) -> None:
        self._http = http
        self._submit_read_timeout = submit_read_timeout
        self._base_url = base_url.rstrip("/")
        # Kept as SecretStr so that vars(), reprs and tracebacks with locals never show it.
        self.__key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._retry = retry or RetryPolicy()
        self._clock = clock

    def __repr__(self) -> str:
        return f"Upstream(base_url={self._base_url!r}, api_key={'***' if self.__key else None})"

    def with_key(self, api_key: SecretStr | None) -> Upstream:
        """The same upstream (one HTTP client, one retry policy) speaking with another key:
        team mode's per-caller keys."""
        return Upstream(
            self._http,
            base_url=self._base_url,
            api_key=api_key,
            retry=self._retry,
            clock=self._clock,
            submit_read_timeout=self._submit_read_timeout,
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def _headers(self) -> dict[str, str]:
        if not self.__key:
            raise ConfigurationError(NO_KEY_MESSAGE)
        return {"Authorization": f"Bearer {self.__key.get_secret_value()}", "Accept": "application/json"}

    async def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        deadline: float | None = None,
        endpoint: str | None = None,
    ) -> Any:
        """GET a JSON document; retried on transient failures (reads are safe to repeat).

        ``endpoint``: the path as a template (``/v1/suno/fetch/{id}``) when ``path`` holds an id; the
        metrics name requests by it, never by an id."""
        answer = await call_with_retry(
            lambda: self._once("GET", path, params=params, endpoint=endpoint),
            policy=self._retry,
            idempotent=True,
            deadline=deadline,
            clock=self._clock,
        )
        return answer.body

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a submit. Repeated only if an attempt failed before anything was sent."""
        return (await self.post_answer(path, body)).body

    async def post_answer(self, path: str, body: Mapping[str, Any]) -> Answer:
        """POST a submit and keep the start of its answer as received (see :data:`RAW_ANSWER_MAX`)."""
        return await call_with_retry(
            lambda: self._once(
                "POST", path, json=body, read_timeout=self._submit_read_timeout, keep_raw=True
            ),
            policy=self._retry,
            idempotent=False,
            clock=self._clock,
        )

    async def _once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
        keep_raw: bool = False,
        endpoint: str | None = None,
    ) -> Answer:
        headers = self._headers()
        endpoint = endpoint or path
        url = self._base_url + path
        extensions = {}
        if read_timeout is not None:
            timeout = self._http.timeout
            extensions["timeout"] = httpx.Timeout(
                connect=timeout.connect,
                read=read_timeout,
                write=timeout.write,
                pool=timeout.pool,
            ).as_dict()
        try:
            response = await self._http.request(
                method, url, params=params, json=json, headers=headers, extensions=extensions
            )
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            metrics.UPSTREAM_REQUESTS.labels(endpoint, method, "timeout").inc()
            raise UpstreamTimeoutError(
                f"could not connect to {self._base_url} in time", request_sent=False
            ) from err
        except httpx.TimeoutException as err:
            metrics.UPSTREAM_REQUESTS.labels(endpoint, method, "timeout").inc()
            raise UpstreamTimeoutError(f"{self._base_url} did not answer in time", request_sent=True) from err
        except httpx.ConnectError as err:
            metrics.UPSTREAM_REQUESTS.labels(endpoint, method, "connect_error").inc()
            raise UpstreamConnectionError(
                f"could not connect to {self._base_url}", request_sent=False
            ) from err
        except httpx.TransportError as err:
            metrics.UPSTREAM_REQUESTS.labels(endpoint, method, "transport_error").inc()
            raise UpstreamConnectionError(
                f"the connection to {self._base_url} failed mid-request ({type(err).__name__})",
                request_sent=True,
            ) from err
        log.debug("%s %s -> %s", method, path, response.status_code)
        metrics.UPSTREAM_REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
        if response.status_code == 429:
            metrics.UPSTREAM_RATE_LIMITED.labels(endpoint).inc()
        try:
            body = self._decode(response)
        except SunoError as err:
            # An upstream that quotes the request back must not put the key into our errors.
            scrubbed = self._scrub(err.message)
            if scrubbed != err.message:
                err.message = scrubbed
                err.args = (err.message,)
            if isinstance(err, MalformedResponseError) and err.raw_answer is None:
                err.raw_answer = self._raw(response)
            raise
        return Answer(body, self._raw(response) if keep_raw else None)

    def _scrub(self, text: str) -> str:
        secret = self.__key.get_secret_value() if self.__key else ""
        return text.replace(secret, "***") if secret else text

    def _raw(self, response: httpx.Response) -> str:
        # Scrubbed before it is cut, so a key split by the cut cannot leave half of itself.
        text = self._scrub(response.content.decode("utf-8", "replace"))
        return text if len(text) <= RAW_ANSWER_MAX else text[: RAW_ANSWER_MAX - 1] + "…"

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        raw = response.content
        try:
            body: Any = decode_json(raw)
        except MalformedResponseError:
            if response.is_success:
                raise
            body = raw.decode("utf-8", "replace")
        if not response.is_success or is_error_body(body):
            raise error_from_response(response.status_code, body, response.headers)
        return body
