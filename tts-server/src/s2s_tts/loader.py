"""Makes the engine a name selects. The real engine is imported only when asked for (it brings torch and
transformers); the espeak-ng double lives with the tests and is found beside the package's source."""

from __future__ import annotations

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
    root = Path(__file__).resolve().parents[2]
    if not (root / "tests" / "doubles" / "espeak_double.py").is_file():
        raise EngineLoadError(
            f"the espeak-double engine is a test double in tts-server/tests/doubles, not found under {root}"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.doubles.espeak_double import EspeakDoubleEngine

    return EspeakDoubleEngine(max_streams=spec.max_streams)
