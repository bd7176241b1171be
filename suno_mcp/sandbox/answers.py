"""The vendor's documented answers, on demand: literal error bodies and other submit shapes.

The vendor's scenario pages list its refusals as ``{"error": {"message": ..., "type": ...}}``
with these words: 400 invalid prompt, 401 "Invalid signature", 403 "Invalid Token", 403
"Insufficient balance", 503 "Input may not meet the guidelines. Please adjust and try again."
Their ``type`` values are not documented: the ones below are the sandbox's own choice. The clip
API's documented error body also carries ``code``, so the clip family adds it.

Other shapes a client of a gateway may meet (none documented by this vendor, all seen from
gateways of its kind), each answered only when its fault is drawn:

- ``wrapped_id``: ``{"code": "success", "data": {"task_id": id}}`` instead of ``"data": id``;
- ``wrapped_id_plain``: ``{"data": {"id": id}}``, no ``code`` at all;
- ``odd_id``: the task id holds ``: / . +``; it stays fetchable under that id, percent-encoded;
- ``wrapped_clip``: the clip API's batch (or concat clip) inside ``{"code": "success", "data": ...}``;
- ``task_failure``: a fetch whose ``data`` is a task object (see :func:`task_object`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from suno_mcp.sandbox.faults import RESHAPE_FAULTS

INVALID_PROMPT = "Invalid prompt: prompt cannot be empty"

#: kind -> (HTTP status, the vendor's message, the sandbox's ``type``)
VENDOR_ERRORS: dict[str, tuple[int, str, str]] = {
    "policy_503": (
        503,
        "Input may not meet the guidelines. Please adjust and try again.",
        "content_policy_violation",
    ),
    "invalid_token": (403, "Invalid Token", "invalid_token"),
    "invalid_signature": (401, "Invalid signature", "authentication_error"),
    "balance": (403, "Insufficient balance", "insufficient_balance"),
    "invalid_prompt": (400, INVALID_PROMPT, "invalid_request_error"),
}

_CLIP_CODES = {400: "invalid_request", 401: "invalid_api_key", 403: "forbidden", 503: "service_unavailable"}

#: What a task-level failure says (the ``task_failure`` fault).
TASK_FAIL_REASON = "Task failed upstream: the generation was aborted before any clip was rendered."


def vendor_error(kind: str, family: str) -> Response:
    """The literal answer of a vendor-error fault in ``family`` ("task" or "clip")."""
    status, message, error_type = VENDOR_ERRORS[kind]
    error: dict[str, Any] = {"message": message, "type": error_type}
    if family == "clip":
        error["code"] = _CLIP_CODES.get(status, "error")
    return JSONResponse({"error": error}, status)


def invalid_prompt_200() -> Response:
    """The task API's refusal with HTTP 200, exactly as the vendor's page shows it."""
    return JSONResponse({"code": "error", "data": None, "message": INVALID_PROMPT}, 200)


def odd_task_id() -> str:
    """A fresh task id with characters outside ``[A-Za-z0-9_-]`` (``: / . +``)."""
    raw = uuid.uuid4().hex
    return f"{raw[:8]}:{raw[8:20]}/part.{raw[20]}+{raw[21:24]}"


def is_reshape(fault: str | None) -> bool:
    """Whether ``fault`` answers a normal request in another shape (after handling it)."""
    return fault in RESHAPE_FAULTS


def reshape(fault: str, response: Response, rename: Callable[[str], str]) -> Response:
    """``response`` (a successful submit) in the shape ``fault`` asks for.

    ``rename(old_id) -> new_id`` re-keys the created task for ``odd_id``.
    """
    if response.status_code != 200:
        return response  # a refused submit stays refused, in the usual shape
    body = json.loads(bytes(response.body))
    if fault == "wrapped_clip":
        return JSONResponse({"code": "success", "data": body})
    task_id = body["data"]
    if fault == "odd_id":
        return JSONResponse({"code": "success", "data": rename(task_id), "message": ""})
    if fault == "wrapped_id":
        return JSONResponse({"code": "success", "data": {"task_id": task_id}})
    if fault == "wrapped_id_plain":
        return JSONResponse({"data": {"id": task_id}})
    raise AssertionError(f"unhandled reshape fault {fault}")


def task_object(
    task_id: str, kind: str, failed: bool, progress: str, submit_time: int, items: list[dict[str, Any]]
) -> dict[str, Any]:
    """The fetch ``data`` of a task that fails at the task level (the ``task_failure`` fault).

    Sandbox choice, in the form one-api-style gateways use when they relay Suno tasks: the task
    is an object whose own ``status`` (``IN_PROGRESS`` then ``FAILURE``) and ``fail_reason`` are
    the truth, while its clip items, nested under ``data``, never leave ``queued``. A client that
    reads only the items waits forever; one that reads the task sees it failed.
    """
    return {
        "task_id": task_id,
        "action": "LYRICS" if kind == "lyrics" else "MUSIC",
        "status": "FAILURE" if failed else "IN_PROGRESS",
        "fail_reason": TASK_FAIL_REASON if failed else None,
        "progress": "100%" if failed else progress,
        "submit_time": submit_time,
        "data": items,
    }
