"""Why a child of `streamfleet up` stopped, in one message: which, why, its last log lines."""

from __future__ import annotations

from streamfleet.localproc import reason


class ChildFailed(RuntimeError):
    """A child process of the stack exited while the stack was starting."""

    def __init__(self, name: str, returncode: int | None, log_path: str, tail: str) -> None:
        self.name = name
        self.returncode = returncode
        super().__init__(
            f"{name} exited (code {returncode}) while the stack was starting: "
            f"{reason(tail) or 'nothing in its log says why'}\n--- last lines of {log_path} ---\n{tail}"
        )
