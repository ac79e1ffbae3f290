"""What the real Job commands leave in their termination logs, captured on the real control plane
(`termination_messages.json`; tests/e2e/cluster checks they still match)."""

from __future__ import annotations

import json
from pathlib import Path

TERMINATION_MESSAGES: dict[str, str] = json.loads((Path(__file__).with_name("termination_messages.json")).read_text())
#: The revision the captured migrate and downgrade messages report (v2's, on the real control plane).
RECORDED_REVISION: str = json.loads(TERMINATION_MESSAGES["migrate"])["schemaRevision"]


def termination_message(kind: str, succeeded: bool, schema_revision: str) -> str:
    """What `kind`'s real command leaves in its termination log when it succeeds or fails."""
    if kind in ("migrate", "downgrade"):
        if not succeeded:
            return ""  # the command fails before it can report a revision
        return TERMINATION_MESSAGES[kind].replace(json.dumps(RECORDED_REVISION), json.dumps(schema_revision))
    if kind == "smoke":
        return TERMINATION_MESSAGES["smoke-passed" if succeeded else "smoke-failed"]
    return TERMINATION_MESSAGES[kind]
