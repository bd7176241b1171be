"""Saving hosted audio to disk: streamed, size- and type-checked, written atomically.

Audio URLs are public CDN links, so no credentials are sent with them: the API key must
not travel to another host. File writes run in a worker thread; the event loop only waits.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from suno_mcp.domain.errors import (
    MalformedResponseError,
    NotFoundError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    error_from_response,
)
from suno_mcp.domain.media import AUDIO_TYPES
from suno_mcp.upstream.retry import RetryPolicy, call_with_retry

# What a CDN answers for an expired or withdrawn audio link.
EXPIRED_URL_STATUS = frozenset({401, 403, 404, 410})


class _PartFile:
    """A temporary file beside ``final`` that becomes it only on commit, so readers never see half a file.

    Every method blocks: call them through :func:`anyio.to_thread.run_sync`.
    """

    def __init__(self, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=final.parent, prefix=".part-", suffix=final.suffix)
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._final = final

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def commit(self) -> None:
        self._file.close()
        os.replace(self._tmp, self._final)

    def discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Downloaded:
    """A file saved by :func:`download_to`."""

    path: str
    bytes: int
    content_type: str
    extension: str


def _too_large(max_bytes: int) -> MalformedResponseError:
    return MalformedResponseError(f"the audio file is larger than the {max_bytes}-byte limit")


async def _save(response: httpx.Response, final: Path, max_bytes: int) -> int:
    """Stream the body into ``final`` through a part file; returns the size written."""
    part = await anyio.to_thread.run_sync(_PartFile, final)
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            await anyio.to_thread.run_sync(part.write, chunk)
        await anyio.to_thread.run_sync(part.commit)
    finally:
        # Shielded: a cancelled download (a shutdown, a caller gone) must still close its file and
        # remove the part, or both leak; closing and unlinking return at once.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(part.discard)
    return size


async def download_to(
    http: httpx.AsyncClient,
    url: str,
    directory: str,
    stem: str,
    *,
    max_bytes: int,
    retry: RetryPolicy | None = None,
) -> Downloaded:
    """Stream ``url`` into ``directory/stem.<ext>``, atomically, refusing non-audio and oversize bodies."""

    async def attempt() -> Downloaded:
        try:
            async with http.stream(
                "GET", url, headers={"Accept": "audio/*"}, follow_redirects=True
            ) as response:
                if not response.is_success:
                    await response.aread()
                    if response.status_code in EXPIRED_URL_STATUS:
                        # The CDN, not gptproto, answered: a 401/403 here is an expired or
                        # private link, not a rejected key or an empty account.
                        raise NotFoundError(
                            f"the audio URL answered HTTP {response.status_code}: "
                            "the link has expired or is no longer public",
                            status_code=response.status_code,
                        )
                    raise error_from_response(response.status_code, response.text, response.headers)
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                extension = AUDIO_TYPES.get(content_type)
                if extension is None:
                    raise MalformedResponseError(
                        f"the audio URL answered with {content_type or 'no content type'}, not audio"
                    )
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise _too_large(max_bytes)
                final = Path(directory) / f"{stem}.{extension}"
                size = await _save(response, final, max_bytes)
                return Downloaded(path=str(final), bytes=size, content_type=content_type, extension=extension)
        except httpx.TimeoutException as err:
            raise UpstreamTimeoutError("the audio host did not answer in time", request_sent=True) from err
        except httpx.TransportError as err:
            raise UpstreamConnectionError(
                f"the download failed ({type(err).__name__})", request_sent=True
            ) from err

    return await call_with_retry(attempt, policy=retry or RetryPolicy(), idempotent=True)
