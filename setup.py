"""Package layout that pyproject.toml cannot express: the repository's `web/` folder
ships as the data package `streamfleet_web`, without moving it.

Whatever is under web/ when the wheel is built goes in (a bundle built by the
frontend's build step included), except node_modules. Each folder of web/ is
listed as a (data) package so setuptools copies it without warnings. Everything
else about the distribution is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_packages, setup

CODE = ["streamfleet*", "control_plane*", "regional_stack*", "simulators*", "nginx_lua*"]
WEB = Path("web")


def web_packages() -> dict[str, str]:
    found = {"streamfleet_web": str(WEB)}
    for folder in sorted(p for p in WEB.rglob("*") if p.is_dir()):
        parts = folder.relative_to(WEB).parts
        if "node_modules" in parts or not all(p.isidentifier() for p in parts):
            continue
        found[".".join(("streamfleet_web", *parts))] = str(folder)
    return found


setup(
    packages=[*find_packages(include=CODE), *web_packages()],
    package_dir=web_packages(),
)
