"""Package layout that pyproject.toml cannot express: the repository's `web/` folder
ships as the data package `streamfleet_web`, without moving it.

Whatever is under web/ when the wheel is built goes in (a bundle built by the
frontend's build step included), except node_modules. Everything else about the
distribution is in pyproject.toml.
"""

from setuptools import find_packages, setup

CODE = ["streamfleet*", "control_plane*", "regional_stack*", "simulators*", "nginx_lua*"]

setup(
    packages=[*find_packages(include=CODE), "streamfleet_web"],
    package_dir={"streamfleet_web": "web"},
)
