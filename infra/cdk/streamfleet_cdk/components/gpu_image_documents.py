"""The EC2 Image Builder component documents of the GPU image (pure data).

Built as data and serialised as JSON (which is YAML), never as templated text.
Each has a validate or test phase, so an image that cannot see its GPU or
start the agent is never distributed. Used by components/gpu_image.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

AGENT_VENV = "/opt/streamfleet/venv"
BAKED_MARKER = "/opt/streamfleet/baked"
# Downloads land here (root-owned, not a shared temporary directory); removed after use.
BUILD_DIR = "/opt/streamfleet/build"


def content_hash(*parts: str) -> str:
    """Ten hex digits naming a component or recipe by its content.

    Image Builder components and recipes are immutable per name and version: a
    changed document under the same name and version fails the deploy. Naming
    them by content makes every change a replacement, and an unchanged one a no-op.
    """
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:10]


def _document(name: str, description: str, phases: list[dict[str, Any]]) -> str:
    # JSON is YAML: the component document is built as data, never as templated text.
    return json.dumps(
        {"name": name, "description": description, "schemaVersion": 1.0, "phases": phases},
        indent=1,
    )


def _build_dir() -> dict[str, Any]:
    return {
        "name": "BuildDirectory",
        "action": "CreateFolder",
        "inputs": [{"path": BUILD_DIR, "overwrite": False}],
    }


def _bash(name: str, *commands: str) -> dict[str, Any]:
    return {
        "name": name,
        "action": "ExecuteBash",
        "inputs": {"commands": ["set -euo pipefail", *commands]},
    }


def nvidia_document(driver: str) -> str:
    return _document(
        "streamfleet-nvidia-driver",
        f"NVIDIA driver {driver} (server branch, with Vulkan) for g4dn/g5/g6",
        [
            {
                "name": "build",
                "steps": [
                    _bash(
                        "InstallDriver",
                        "export DEBIAN_FRONTEND=noninteractive",
                        "apt-get update -q",
                        f"apt-get install -y -q linux-modules-nvidia-{driver}-server-aws "
                        f"nvidia-driver-{driver}-server nvidia-utils-{driver}-server "
                        "libvulkan1 vulkan-tools",
                    ),
                    # The kernel module loads on the next boot.
                    {"name": "Reboot", "action": "Reboot", "inputs": {"delaySeconds": 10}},
                ],
            },
            {
                "name": "validate",
                "steps": [_bash("GpuVisible", "nvidia-smi -L | grep -q GPU")],
            },
            {
                "name": "test",
                "steps": [
                    _bash("VulkanSeesGpu", "vulkaninfo --summary 2>/dev/null | grep -qi nvidia")
                ],
            },
        ],
    )


def unreal_document(artifact: str, install_dir: str) -> str:
    return _document(
        "streamfleet-unreal-app",
        "the packaged Unreal Pixel Streaming app, from its S3 artifact",
        [
            {
                "name": "build",
                "steps": [
                    _build_dir(),
                    {
                        "name": "Download",
                        "action": "S3Download",
                        "inputs": [{"source": artifact, "destination": f"{BUILD_DIR}/unreal.zip"}],
                    },
                    _bash(
                        "Unpack",
                        "command -v unzip >/dev/null || apt-get install -y -q unzip",
                        f"rm -rf {install_dir} && install -d -m 0755 {install_dir}",
                        f"unzip -q {BUILD_DIR}/unreal.zip -d {install_dir}",
                        f"rm -f {BUILD_DIR}/unreal.zip",
                    ),
                ],
            },
            {
                "name": "validate",
                "steps": [
                    _bash(
                        "LauncherPresent",
                        f"find {install_dir} -maxdepth 2 -name '*.sh' -perm -u+x | grep -q .",
                    )
                ],
            },
        ],
    )


def agent_document(wheelhouse_uri: str, lock_file: str) -> str:
    house = f"{BUILD_DIR}/wheelhouse"
    return _document(
        "streamfleet-agent",
        "the streamfleet agent, offline from the wheelhouse, every dependency pinned by hash",
        [
            {
                "name": "build",
                "steps": [
                    _build_dir(),
                    {
                        "name": "Download",
                        "action": "S3Download",
                        "inputs": [
                            {"source": wheelhouse_uri, "destination": f"{BUILD_DIR}/wheelhouse.zip"}
                        ],
                    },
                    _bash(
                        "Install",
                        "export DEBIAN_FRONTEND=noninteractive",
                        "apt-get install -y -q --no-install-recommends python3-venv unzip",
                        f"rm -rf {house} && unzip -q {BUILD_DIR}/wheelhouse.zip -d {house}",
                        f"python3 -m venv {AGENT_VENV}",
                        # Dependencies: only what the lock names, only with its hashes.
                        f"{AGENT_VENV}/bin/pip install --no-index --find-links {house} "
                        f"--require-hashes -r {house}/{lock_file}",
                        # streamfleet itself: built with this deployment, in the same asset.
                        f"{AGENT_VENV}/bin/pip install --no-index --no-deps {house}/streamfleet-*.whl",
                        f"ln -sf {AGENT_VENV}/bin/streamfleet /usr/local/bin/streamfleet",
                        "id streamfleet >/dev/null 2>&1 || useradd --system --home-dir "
                        "/var/lib/streamfleet --create-home --shell /usr/sbin/nologin streamfleet",
                        "usermod -aG video,render streamfleet || usermod -aG video streamfleet",
                        # Boot (boot/common.sh) sees the agent is baked in.
                        f"{AGENT_VENV}/bin/streamfleet --version > {BAKED_MARKER}",
                        f"rm -rf {house} {BUILD_DIR}/wheelhouse.zip",
                    ),
                ],
            },
            {
                "name": "validate",
                "steps": [
                    _bash(
                        "AgentRuns",
                        f"{AGENT_VENV}/bin/pip check",
                        "/usr/local/bin/streamfleet agent --help >/dev/null",
                    )
                ],
            },
        ],
    )
