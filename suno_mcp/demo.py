"""``suno-mcp demo``: the whole job through a real MCP client session.

It starts our own server over stdio (with the sandbox unless GPTPROTO_API_KEY is set),
calls generate_music, follows the task with a progress line on stderr (a bar towards the usual
time to final audio, counted from the submit), downloads the
audio and copies it into the output folder.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

# Each tool call waits at most this long; the demo makes a bounded number of them.
CALL_WAIT_S = 45
MAX_STATUS_CALLS = 12
DEMO_SANDBOX_SPEED = 10


def _bar(elapsed: float, total: float | None, message: str | None) -> None:
    """One progress line: the bar fills towards the usual time to final audio.

    The server counts ``elapsed`` from the submit, so the line carries on (never restarts)
    from one tool call to the next.
    """
    width = 24
    share = min(1.0, elapsed / total) if total else 0.0
    filled = round(share * width)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {message or ''}"[:110].ljust(110))
    sys.stderr.flush()


def _structured(result: Any) -> dict[str, Any]:
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise RuntimeError(text)
    data: dict[str, Any] = result.structured_content or {}
    return data


def _copy_out(files: list[dict[str, Any]], out: Path) -> list[tuple[Path, int]]:
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for file in files:
        target = out / Path(file["path"]).name
        shutil.copyfile(file["path"], target)
        copied.append((target, int(file["bytes"])))
    return copied


async def _demo(prompt: str, out: Path, instrumental: bool, sandbox: bool) -> int:
    from mcp import Client, StdioServerParameters

    env = dict(os.environ)
    args = ["-m", "suno_mcp", "serve"]
    data_dir: str | None = None
    if sandbox:
        args += ["--sandbox", "--sandbox-speed", str(DEMO_SANDBOX_SPEED)]
        env.pop("GPTPROTO_API_KEY", None)
        data_dir = tempfile.mkdtemp(prefix="suno-mcp-demo-")
        env["SUNO_MCP_DATA_DIR"] = data_dir
    params = StdioServerParameters(command=sys.executable, args=args, env=env)

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        _bar(progress, total, message)

    try:
        async with Client(params) as client:
            where = (
                "the built-in sandbox (synthesized audio, no key needed)" if sandbox else "Suno via gptproto"
            )
            print(f"Generating '{prompt}' with {where}...", file=sys.stderr)
            arguments: dict[str, Any] = {"description": prompt, "wait_seconds": CALL_WAIT_S}
            if instrumental:
                arguments["instrumental"] = True
            task = _structured(
                await client.call_tool("generate_music", arguments, progress_callback=progress)
            )
            task_id = task["task_id"]
            for _ in range(MAX_STATUS_CALLS):
                if task["status"] in ("complete", "failed"):
                    break
                task = _structured(
                    await client.call_tool(
                        "get_task_status",
                        {"task_id": task_id, "wait_seconds": CALL_WAIT_S},
                        progress_callback=progress,
                    )
                )
            sys.stderr.write("\n")
            print(f"task id: {task_id}  status: {task['status']}")
            for clip in task["clips"]:
                print(
                    f"  clip {clip['id']}: {clip.get('title') or ''} {clip.get('audio_url') or clip.get('preview_url')}"
                )
            if task["status"] != "complete":
                print(f"not finished yet; check later with get_task_status('{task_id}')", file=sys.stderr)
                return 1
            saved = _structured(await client.call_tool("download_audio", {"task_id": task_id}))
            for target, size in await anyio.to_thread.run_sync(_copy_out, saved["files"], out):
                print(f"saved {target} ({size} bytes)")
            if sandbox:
                print("(sandbox audio: synthesized locally, not made by Suno)", file=sys.stderr)
            return 0
    finally:
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)


def run_demo(prompt: str, *, out: str, instrumental: bool = False, force_sandbox: bool = False) -> int:
    """Run the demo; returns the process exit code."""
    sandbox = force_sandbox or not os.environ.get("GPTPROTO_API_KEY", "").strip()
    try:
        return anyio.run(_demo, prompt, Path(out), instrumental, sandbox)
    except RuntimeError as err:
        sys.stderr.write("\n")
        print(f"suno-mcp demo: {err}", file=sys.stderr)
        return 1
