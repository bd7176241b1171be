"""Uploads: ``POST /v1/suno/uploads/audio-url`` turns a song at a URL into a clip to continue.

The vendor's request is ``{"url": "<public audio URL>"}``; its documented answer is only a
placeholder, ``{"status": "success"}``, so where the new clip's id travels is unknown. The sandbox
answers ``{"status": "success", "id": "m_<uuid>"}`` and, on demand (the fault kinds below), puts
the id under ``clip_id`` or ``data.id`` or leaves it out, so a client's tolerant reader meets
every shape it is written for.

What the sandbox does with the URL (sandbox choices, not vendor facts):

* It fetches only loopback URLs (``localhost``, ``127.0.0.0/8``, ``::1``) unless its
  :class:`UploadPolicy` allows more: the sandbox stays offline, and its own audio URLs and a
  test's file server are loopback. Only http(s); bounded time, size and redirects.
* It decodes uncompressed PCM WAV (8/16/24/32-bit, any rate and channel count, made mono and
  resampled to the sandbox's rate). MP3 and other compressed formats are refused with a clear
  error: decoding them needs a dependency the sandbox does not take.
* The clip (``m_<uuid>``) is complete at once, lasts as long as the file and plays it back from
  the sandbox's own audio URL. Its style is what :mod:`suno_mcp.sandbox.analysis` hears: the key
  and tempo are estimated, the instruments are a guess. A continuation (``continue_clip_id`` with
  an ``-upload`` model) synthesizes that style from ``continue_at`` on, and concat joins the
  uploaded audio itself with the continuation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import ipaddress
import ssl
import sys
import uuid
import wave
from array import array
from itertools import repeat
from operator import add, floordiv
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
import httpx

from suno_mcp.sandbox.analysis import estimate_key, estimate_tempo, samples_of
from suno_mcp.sandbox.audio import SAMPLE_RATE, MusicStyle, style_from_request
from suno_mcp.sandbox.state import Clip, SandboxError, SandboxState, Segment, _iso_now

UPLOAD_ENDPOINT = "upload"
UPLOADED_MODEL = "upload"
UPLOAD_ID_PREFIX = "m_"

#: Fault kinds that change where the answer carries the new clip's id (the upload still happens).
ANSWER_SHAPE_FAULTS = frozenset({"upload_clip_id", "upload_data_id", "upload_no_id"})

FETCH_TIMEOUT_S = 10.0
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
MAX_UPLOAD_SECONDS = 600.0
MAX_REDIRECTS = 3
# The style of an upload is heard in its first minute; longer analysis buys nothing.
_ANALYSED_SECONDS = 60.0
_FALLBACK_BPM = 100
_WAV_FORMAT_PCM = 1


@dataclasses.dataclass(frozen=True)
class UploadPolicy:
    """Which URLs the sandbox fetches for an upload, and how much it waits for and accepts."""

    allow_remote: bool = False
    timeout_s: float = FETCH_TIMEOUT_S
    max_bytes: int = MAX_UPLOAD_BYTES


class _Refused(Exception):
    """A redirect to a host the policy does not allow (raised inside httpx, turned into a 400)."""


def _invalid(message: str) -> SandboxError:
    return SandboxError(400, message, "invalid_request_error")


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, policy: UploadPolicy) -> httpx.URL:
    """The URL to fetch, or a 400 that says what is wrong with it."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise _invalid(f"Invalid url: {url!r} is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _invalid(f"Invalid url: {url!r} must be an http:// or https:// URL of an audio file")
    if not policy.allow_remote and not _is_loopback(parsed.host):
        raise _invalid(
            f"Invalid url: the sandbox is offline and fetches only loopback URLs (localhost, 127.0.0.1, ::1), "
            f"not {parsed.host}"
        )
    return parsed


@functools.cache
def _tls() -> ssl.SSLContext:
    # httpx would build a context per client and load every CA certificate into it, ~50 ms of CPU a
    # fetch; the fetches are plain http on loopback nearly always. Made once, when first needed.
    return httpx.create_ssl_context(trust_env=False)


async def fetch_audio(url: httpx.URL, policy: UploadPolicy) -> bytes:
    """The bytes at ``url``, within the policy's time and size; a 400 when they cannot be had."""

    async def check_hop(request: httpx.Request) -> None:
        if not policy.allow_remote and not _is_loopback(request.url.host):
            raise _Refused(request.url.host)

    try:
        async with (
            httpx.AsyncClient(
                timeout=policy.timeout_s,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                event_hooks={"request": [check_hop]},
                trust_env=False,  # a proxy from the environment must not carry a loopback fetch away
                verify=_tls(),
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise _invalid(f"Could not fetch the audio: {url} answered HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > policy.max_bytes:
                raise _too_large(policy)
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > policy.max_bytes:
                    raise _too_large(policy)
            return bytes(data)
    except _Refused as err:
        raise _invalid(
            f"Could not fetch the audio: {url} redirects to {err}, which is not a loopback host"
        ) from None
    except httpx.TooManyRedirects:
        raise _invalid(
            f"Could not fetch the audio: {url} redirects more than {MAX_REDIRECTS} times"
        ) from None
    except httpx.TimeoutException:
        raise _invalid(
            f"Could not fetch the audio: {url} did not answer within {policy.timeout_s:g} s"
        ) from None
    except httpx.HTTPError as err:
        raise _invalid(f"Could not fetch the audio: {url} is unreachable ({type(err).__name__})") from None


def _too_large(policy: UploadPolicy) -> SandboxError:
    return _invalid(
        f"The audio file is larger than the sandbox accepts ({policy.max_bytes // (1024 * 1024)} MB)"
    )


def _compressed_format(data: bytes) -> str | None:
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "MP3"
    if data[:4] == b"fLaC":
        return "FLAC"
    if data[:4] == b"OggS":
        return "Ogg"
    if data[4:8] == b"ftyp":
        return "MP4/AAC"
    return None


def decode_wav(data: bytes) -> bytes:
    """Uncompressed PCM WAV as the sandbox's own PCM: mono, 16-bit, ``SAMPLE_RATE``; else a 400."""
    compressed = _compressed_format(data)
    if compressed is not None:
        raise _invalid(
            f"Unsupported audio: the file is {compressed}; the sandbox decodes only uncompressed PCM WAV "
            "(a sandbox clip's audio_url is one)"
        )
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _invalid(
            "Unsupported audio: the file is not audio the sandbox can read (expected a PCM WAV file)"
        )
    try:
        with wave.open(io.BytesIO(data)) as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as err:
        raise _invalid(f"Unsupported audio: the WAV file cannot be read ({err})") from None
    if not frames or rate <= 0:
        raise _invalid("Unsupported audio: the WAV file holds no audio")
    if len(frames) / (channels * width * rate) > MAX_UPLOAD_SECONDS:
        raise _invalid(f"Unsupported audio: the file is longer than {MAX_UPLOAD_SECONDS / 60:g} minutes")
    samples = _mono(_sixteen_bit(frames, width), channels)
    return _resampled(samples, rate).tobytes()


def _sixteen_bit(frames: bytes, width: int) -> array[int]:
    if width == 1:
        # 8-bit WAV is unsigned: 128 is silence.
        return array("h", ((b - 128) << 8 for b in frames))
    if width == 2:
        out = array("h")
        out.frombytes(frames[: len(frames) - len(frames) % 2])
        if sys.byteorder == "big":  # pragma: no cover - WAV is little-endian, so are our hosts
            out.byteswap()
        return out
    if width in (3, 4):
        # Keep the two most significant bytes of each little-endian sample.
        top = bytearray(2 * (len(frames) // width))
        top[0::2] = frames[width - 2 :: width]
        top[1::2] = frames[width - 1 :: width]
        return _sixteen_bit(bytes(top), 2)
    raise _invalid(f"Unsupported audio: {8 * width}-bit samples")


def _mono(samples: array[int], channels: int) -> array[int]:
    if channels == 1:
        return samples
    usable = len(samples) - len(samples) % channels
    return _mean_of_groups(samples[:usable], channels)


def _mean_of_groups(samples: array[int], size: int) -> array[int]:
    """The mean of every ``size`` consecutive samples (channels of a frame, or a decimation)."""
    total: list[int] = list(samples[0::size])
    for offset in range(1, size):
        total = list(map(add, total, samples[offset::size]))
    return array("h", map(floordiv, total, repeat(size)))


def _resampled(samples: array[int], rate: int) -> array[int]:
    if rate == SAMPLE_RATE:
        return samples
    if rate % SAMPLE_RATE == 0:
        # 44.1 kHz and 88.2 kHz: a mean over whole groups is exact and quick.
        size = rate // SAMPLE_RATE
        return _mean_of_groups(samples[: len(samples) - len(samples) % size], size)
    # Linear interpolation: no anti-aliasing filter, which the sandbox's ears do not need.
    step = rate / SAMPLE_RATE
    count = int(len(samples) / step)
    last = len(samples) - 1
    out = array("h", bytes(2 * count))
    for i in range(count):
        position = i * step
        j = int(position)
        frac = position - j
        k = min(j + 1, last)
        out[i] = round(samples[j] + (samples[k] - samples[j]) * frac)
    return out


def heard_style(pcm: bytes) -> MusicStyle:
    """The style the sandbox continues an upload in: its estimated key and tempo, guessed instruments."""
    samples = samples_of(pcm[: 2 * round(_ANALYSED_SECONDS * SAMPLE_RATE)])
    key, mode = estimate_key(samples)
    bpm = round(estimate_tempo(samples)) or _FALLBACK_BPM
    seed = int.from_bytes(hashlib.sha256(pcm).digest()[:4], "big")
    return style_from_request(tags=f"{bpm} bpm, in {key} {mode}", instrumental=True, seed=seed)


def _decode_and_hear(data: bytes) -> tuple[bytes, MusicStyle]:
    pcm = decode_wav(data)
    return pcm, heard_style(pcm)


def _title_of(url: httpx.URL) -> str:
    stem = PurePosixPath(unquote(url.path)).stem.strip()
    return stem or "Uploaded audio"


def store_upload(
    state: SandboxState, url: httpx.URL, pcm: bytes, style: MusicStyle, account: str = ""
) -> Clip:
    """Keep decoded audio as a complete clip of ``account`` with an ``m_`` id; count it as an upload."""
    clip_id = f"{UPLOAD_ID_PREFIX}{uuid.uuid4()}"
    clip = Clip(
        id=clip_id,
        batch_id=clip_id,
        submitted_at=state.clock(),
        created_at=_iso_now(),
        # Both at zero: the clip is complete from its first read.
        preview_at_s=0.0,
        complete_at_s=0.0,
        title=_title_of(url),
        tags="",
        prompt="",
        gpt_description_prompt=None,
        model_name=UPLOADED_MODEL,
        instrumental=True,
        segments=(Segment(style, 0.0, len(pcm) / 2 / SAMPLE_RATE, pcm=pcm),),
        kind="upload",
        history_type="upload",
        account=account,
    )
    state.clips[clip.id] = clip
    state.stats.clips_created += 1
    state.stats.created_by_endpoint[UPLOAD_ENDPOINT] += 1
    return clip


async def upload_from_url(state: SandboxState, url: str, policy: UploadPolicy, account: str = "") -> Clip:
    """Fetch, decode, hear and store the audio at ``url`` for ``account``; any problem is a 400 naming it."""
    target = check_url(url, policy)
    data = await fetch_audio(target, policy)
    pcm, style = await anyio.to_thread.run_sync(_decode_and_hear, data)
    return store_upload(state, target, pcm, style, account)


def upload_answer(clip_id: str, fault: str | None) -> dict[str, Any]:
    """The upload's JSON answer; an answer-shape fault moves or drops the id."""
    if fault == "upload_clip_id":
        return {"status": "success", "clip_id": clip_id}
    if fault == "upload_data_id":
        return {"status": "success", "data": {"id": clip_id}}
    if fault == "upload_no_id":
        return {"status": "success"}  # the vendor's documented placeholder, word for word
    return {"status": "success", "id": clip_id}
