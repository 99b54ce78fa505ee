"""Makes the engine a name selects. The real engine is imported only when asked for (it brings torch and
transformers); the espeak-ng double lives with the tests (tts-server/tests/doubles) and is loaded from there by
its path, for that name only."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from s2s_tts.engine_api import Engine

ENGINES = ("vibevoice", "espeak-double")


class EngineLoadError(Exception):
    """The engine could not be made; the message is one line for the log."""


@dataclass(frozen=True)
class EngineSpec:
    name: str
    model_dir: Path | None
    device: str
    dtype: str
    max_streams: int


def load_engine(spec: EngineSpec) -> Engine:
    if spec.name == "vibevoice":
        if spec.model_dir is None:
            raise EngineLoadError("--engine vibevoice needs --model-dir (a model folder as the builder lays it out)")
        if not (spec.model_dir / "config.json").is_file():
            raise EngineLoadError(
                f"{spec.model_dir} is not a model folder (no config.json); fill it with `npm run models`"
            )
        from s2s_tts.vibevoice.engine import VibeVoiceEngine

        return VibeVoiceEngine(spec.model_dir, spec.device, spec.dtype, spec.max_streams)
    if spec.name == "espeak-double":
        return _espeak_double(spec)
    raise EngineLoadError(f"unknown engine {spec.name!r} ({', '.join(ENGINES)})")


def _espeak_double(spec: EngineSpec) -> Engine:
    # src/s2s_tts/loader.py -> the tts-server folder, which holds tests/doubles (a checkout, not an installed wheel).
    path = Path(__file__).resolve().parents[2] / "tests" / "doubles" / "espeak_double.py"
    if not path.is_file():
        raise EngineLoadError(f"the espeak-double engine is a test double of a checkout, not found at {path}")
    # Loaded by its path: a `tests` package of some installed distribution can never stand in for it.
    module_spec = importlib.util.spec_from_file_location("s2s_tts_espeak_double", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    engine: Engine = module.EspeakDoubleEngine(max_streams=spec.max_streams)
    return engine
