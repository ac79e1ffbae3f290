"""The real-cluster scenarios build regression images by patching the service's source; a
refactoring that moves the patched line must fail here, in seconds, not after the control plane
has started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cluster.images import V3_REGRESSION, V4_REGRESSION, Patch

PACKAGE = Path(__file__).resolve().parents[2] / "service" / "ragcorp_service"


@pytest.mark.parametrize("patch", [V3_REGRESSION, V4_REGRESSION], ids=["v3", "v4"])
def test_each_regression_patch_applies_once(patch: Patch) -> None:
    assert (PACKAGE / patch.path).read_text().count(patch.old) == 1, patch.path
