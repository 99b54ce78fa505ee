"""Where tests find upstream's real voice presets: `$VIBEVOICE_VOICES_DIR`, else `../shared/data/vibevoice-voices`
beside the checkout (never copied into the project). Tests that need them skip with a message when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VOICES_DIR = REPO_ROOT.parent / "shared" / "data" / "vibevoice-voices"
REAL_PRESETS = ("en-Mike_man.pt", "en-Emma_woman.pt")


def real_voices_dir() -> Path:
    """The folder holding upstream's presets, or a pytest skip saying where they were looked for."""
    configured = os.environ.get("VIBEVOICE_VOICES_DIR")
    folder = Path(configured) if configured else DEFAULT_VOICES_DIR
    if not all((folder / name).is_file() for name in REAL_PRESETS):
        pytest.skip(
            f"upstream's voice presets ({', '.join(REAL_PRESETS)}) are not in {folder}; set VIBEVOICE_VOICES_DIR "
            "to the shared data folder holding them to run this test"
        )
    return folder
