"""The README's first command: `suno-mcp demo` makes a song with no key and no network."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import pytest

from tests.support.stdio_session import server_env

DEMO_LIMIT_S = 120

pytestmark = pytest.mark.slow  # the demo runs as a subprocess, end to end


def test_demo_without_a_key_leaves_playable_non_silent_audio_files(tmp_path: Path) -> None:
    out = tmp_path / "songs"
    env = server_env(tmp_path / "data")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "suno-mcp"), "demo", "a lo-fi song about rain", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "task id:" in done.stdout
    assert "sandbox" in done.stderr
    files = sorted(out.glob("*.wav"))
    assert len(files) == 2
    for file in files:
        with wave.open(str(file), "rb") as audio:
            assert audio.getnframes() / audio.getframerate() > 10
            frames = memoryview(audio.readframes(audio.getnframes())).cast("h")
        assert max(abs(s) for s in frames[::50]) > 1000
    # The demo keeps its sandbox ledger out of the user's data directory.
    assert not (tmp_path / "data").exists()
