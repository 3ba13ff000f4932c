"""RFC 9457 problem details: every error the service returns, one shape.

`type` is a stable URI per kind of problem; `field` names the offending input.
Bad input is 4xx. Only a bug gives 500, and even then without a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from control_plane.domain import (
    BrokerError,
    InvalidArgument,
    IpConflict,
    NonceMismatch,
    NotServed,
    RateLimited,
    SessionExpired,
    SessionNotLive,
    StaleEpoch,
    StoreUnavailable,
    TransitionRefused,
    UnknownInstance,
    UnknownRegion,
    UnknownSession,
)
from streamfleet.wire import ProblemDetail

log = logging.getLogger("streamfleet.control_plane")
TYPE_BASE = "https://streamfleet.dev/problems/"
CONTENT_TYPE = "application/problem+json"


class Problem(web.HTTPException):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str = "",
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.status_code = status
        # Built through the wire model, so every problem the service sends has its shape.
        problem = ProblemDetail.model_validate(
            {"type": TYPE_BASE + kind, "title": title, "status": status,
             "detail": detail or None, "field": field or None, **(extra or {})}
        )  # fmt: skip
        text = problem.model_dump_json(exclude_none=True)
        super().__init__(text=text, content_type=CONTENT_TYPE, headers=headers)


_BROKER_STATUS: dict[type[BrokerError], tuple[int, str]] = {
    InvalidArgument: (422, "Invalid argument"),
    UnknownRegion: (422, "Unknown region"),
    UnknownSession: (404, "Unknown session"),
    SessionExpired: (410, "Session expired"),
    UnknownInstance: (404, "Unknown instance"),
    StaleEpoch: (409, "Stale epoch"),
    SessionNotLive: (409, "Session has ended"),
    TransitionRefused: (409, "State change not allowed"),
    IpConflict: (409, "Private IP conflict"),
    NonceMismatch: (403, "Registration nonce differs"),
    NotServed: (403, "Not this instance's session"),
    RateLimited: (429, "Too many requests"),
}


def from_broker(exc: BrokerError) -> Problem:
    status, title = _BROKER_STATUS.get(type(exc), (400, "Bad request"))
    return Problem(status, exc.code.replace("_", "-"), title, exc.detail, field=exc.field)


def from_validation(exc: ValidationError) -> Problem:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    # pydantic marks a bad dict key with a trailing "[key]"; the field is the key itself.
    loc = tuple(p for p in errors[0]["loc"] if p != "[key]") if errors else ()
    msg = str(errors[0]["msg"]) if errors else "invalid"
    field = ".".join(str(p) for p in loc) or None
    return Problem(
        422, "validation", "Request body is not valid", f"{field}: {msg}" if field else msg,
        field=field, extra={"errors": [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in errors[:10]]},
    )  # fmt: skip


_HTTP_KINDS = {
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem:
        raise
    except StoreUnavailable:
        log.warning("session store unavailable for %s %s", request.method, request.path)
        raise Problem(
            503, "unavailable", "Session store unavailable", "try again shortly",
            headers={"Retry-After": "1"},
        ) from None  # fmt: skip
    except BrokerError as exc:
        raise from_broker(exc) from None
    except ValidationError as exc:
        raise from_validation(exc) from None
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind, title = _HTTP_KINDS.get(exc.status, ("http-error", exc.reason))
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        raise Problem(exc.status, kind, title, headers=headers or None) from None
    except ConnectionResetError:
        raise  # the client went away: nobody to answer, nothing to log
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        raise Problem(500, "internal", "Internal error") from None
