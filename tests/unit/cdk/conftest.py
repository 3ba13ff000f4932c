"""infra/cdk is an app, not an installed package: make its modules importable."""

from __future__ import annotations

import sys
from pathlib import Path

CDK_APP = Path(__file__).resolve().parents[3] / "infra" / "cdk"
if str(CDK_APP) not in sys.path:
    sys.path.insert(0, str(CDK_APP))
