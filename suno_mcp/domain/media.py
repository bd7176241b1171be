"""Audio media types: the one table of MIME types and file extensions the package uses."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

# Content type -> file extension, for downloads; the first type of an extension is its canonical one.
AUDIO_TYPES: dict[str, str] = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}

_TYPE_OF_EXTENSION: dict[str, str] = {}
for _type, _ext in AUDIO_TYPES.items():
    _TYPE_OF_EXTENSION.setdefault(_ext, _type)
_TYPE_OF_EXTENSION["mp4"] = "audio/mp4"


def mime_for_url(url: str) -> str:
    """The audio type a URL's file name suggests; MP3, Suno's usual format, when it says nothing."""
    name = urlsplit(url).path.rsplit("/", 1)[-1].lower()
    extension = name.rsplit(".", 1)[-1] if "." in name else ""
    return _TYPE_OF_EXTENSION.get(extension, "audio/mpeg")


_SLUG_RE = re.compile(r"[^a-z0-9]+")
# Ids and tenant ids that may stand in a file or directory name as they are.
PLAIN_ID_RE = re.compile(r"[A-Za-z0-9_-]+")


def safe_stem(title: str | None, clip_id: str) -> str:
    """A file name stem from a title and clip id: letters, digits, '-' and '_' only."""
    slug = _SLUG_RE.sub("-", (title or "").lower()).strip("-")[:60].strip("-")
    if not PLAIN_ID_RE.fullmatch(clip_id):
        # Upstream ids may hold '/', '..' or ':'; none of that may reach a file name. The
        # hash keeps two ids that differ only there from sharing a file.
        digest = hashlib.sha256(clip_id.encode()).hexdigest()[:8]
        clip_id = f"{re.sub(r'[^A-Za-z0-9_-]+', '-', clip_id).strip('-')[:60]}-{digest}".lstrip("-")
    return f"{slug}-{clip_id}" if slug else clip_id
