from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tiny_checkpoint import write_tiny_model

torch.set_num_threads(1)  # tests share two cores with other work; one thread avoids oversubscription


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-model")
    write_tiny_model(out, seed=0)
    return out
