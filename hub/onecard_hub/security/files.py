"""Writing secrets to disk: owner-only permissions, replaced in one step."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Writes `data` to `path` readable by its owner only (0600), replacing any old file atomically.

    The bytes go to a sibling `.partial` file created 0600 (never wider, whatever the umask),
    which then replaces `path`: a reader sees the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(partial, 0o600)  # an existing .partial kept its old mode through O_CREAT
    os.replace(partial, path)
