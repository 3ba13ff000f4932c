"""Build a wheelhouse: the streamfleet wheel plus every locked dependency, as wheels.

An instance (or a fresh venv) installs from it with no package index at all:

    pip install --no-index --find-links DIR --require-hashes -r DIR/requirements-ROLE.txt

`requirements-ROLE.txt` is the role's lock file (every dependency pinned with its
hashes) plus one line for streamfleet itself, pinned to this wheel's hash, so
nothing is installed that the lock and this build did not name.

    python scripts/wheelhouse.py --wheel dist/streamfleet-X-py3-none-any.whl \\
        --out dist/wheelhouse --role server=requirements/server.lock ...
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path


def wheel_version(wheel: Path) -> str:
    # streamfleet-0.1.0-py3-none-any.whl -> 0.1.0 (PEP 427 file name)
    return wheel.name.split("-")[1]


def requirements(lock_text: str, role: str, wheel: Path) -> str:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    own = f"streamfleet[{role}]=={wheel_version(wheel)} --hash=sha256:{digest}\n"
    return lock_text.rstrip("\n") + "\n" + own


def download(lock: Path, into: Path, python: str) -> None:
    # Wheels only: an sdist would need a build (and its build tools) on the instance.
    subprocess.run(
        [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(lock), "-d", str(into)],
        check=True,
    )  # fmt: skip


def locked_wheels(lock: Path, cache: Path | None, scratch: Path, python: str) -> Path:
    """A folder holding the lock's wheels; with `cache`, kept there per lock content."""
    if cache is None:
        download(lock, scratch, python)
        return scratch
    folder = cache / hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    if not (folder / "COMPLETE").exists():
        folder.mkdir(parents=True, exist_ok=True)
        download(lock, folder, python)
        (folder / "COMPLETE").touch()
    return folder


def build(
    wheel: Path,
    out: Path,
    roles: dict[str, Path],
    python: str = sys.executable,
    cache: Path | None = None,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, out / wheel.name)
    for role, lock in roles.items():
        wheels = locked_wheels(lock, cache, out, python)
        if wheels != out:
            # pip's install checks every file against the lock's hashes, so a cached
            # wheel cannot slip in changed.
            for found in wheels.glob("*.whl"):
                if not (out / found.name).exists():
                    shutil.copy2(found, out / found.name)
        text = requirements(lock.read_text(encoding="utf-8"), role, wheel)
        (out / f"requirements-{role}.txt").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, required=True, help="the streamfleet wheel")
    parser.add_argument("--out", type=Path, required=True, help="wheelhouse folder")
    parser.add_argument(
        "--role", action="append", required=True, metavar="EXTRA=LOCK",
        help="an extra and its lock file, e.g. server=requirements/server.lock; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--cache", type=Path,
        help="keep each lock's downloaded wheels here and reuse them (tests; not for releases)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    roles = {}
    for spec in args.role:
        extra, sep, lock = spec.partition("=")
        if not sep or not Path(lock).is_file():
            parser.error(f"--role {spec}: EXTRA=LOCK with an existing lock file")
        roles[extra] = Path(lock)
    build(args.wheel, args.out, roles, cache=args.cache)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
