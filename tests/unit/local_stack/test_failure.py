"""Which line of a dead child's log says why it died."""

from __future__ import annotations

import pytest

from simulators.local_stack.failure import ChildFailed
from streamfleet.localproc import reason

AGENT_LOG = """\
Traceback (most recent call last):
  File "/x/regional_stack/agent/app.py", line 122, in start
    await web.TCPSite(runner, host, port).start()
OSError: [Errno 98] error while attempting to bind on address ('127.11.0.1', 36030): address already in use
2026-12-01 10:41:42,289 agent ERROR Unclosed client session
client_session: <aiohttp.client.ClientSession object at 0x7fcb19919410>
"""


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (AGENT_LOG, "OSError: [Errno 98] error while attempting to bind on address ('127.11.0.1', 36030): address already in use"),
        ('2026/12/01 [emerg] 7#7: bind() to 127.0.0.1:8081 failed (98: Address already in use)\nnginx: ok',
         "2026/12/01 [emerg] 7#7: bind() to 127.0.0.1:8081 failed (98: Address already in use)"),
        ("# Creating Server TCP listening socket *:6379: bind: Address already in use\n",
         "# Creating Server TCP listening socket *:6379: bind: Address already in use"),
        ("starting\nlistening\n", None),
        ("", None),
    ],
)  # fmt: skip
def test_reason_is_the_line_that_says_what_went_wrong(tail: str, expected: str | None) -> None:
    assert reason(tail) == expected


def test_the_message_names_the_child_the_reason_and_the_log() -> None:
    exc = ChildFailed("agent:eu-central-1/i-1", 1, "/w/agents/a.log", AGENT_LOG)
    first, *rest = str(exc).splitlines()
    assert first.startswith(
        "agent:eu-central-1/i-1 exited (code 1) while the stack was starting: OSError"
    )
    assert rest[0] == "--- last lines of /w/agents/a.log ---"
    assert "\n".join(rest[1:]) == AGENT_LOG.rstrip("\n")
