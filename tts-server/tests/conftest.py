from __future__ import annotations

from pathlib import Path

import pytest
import torch

from s2s_tts.tiny_model import write_tiny_model

torch.set_num_threads(1)  # tests share two cores with other work; one thread avoids oversubscription


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model folder as the test profile gets it (`python -m s2s_tts.tiny_model`), seed 0."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)
