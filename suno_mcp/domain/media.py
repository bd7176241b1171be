"""Audio media types: the one table of MIME types and file extensions the package uses."""

from __future__ import annotations

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
