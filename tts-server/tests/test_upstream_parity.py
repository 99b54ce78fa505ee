"""Same numbers as upstream, and the published format loads.

Needs a checkout of microsoft/VibeVoice at the pinned commit (`VIBEVOICE_REPO`) and a Python with upstream's
requirements (`VIBEVOICE_PYTHON`: transformers 4.x, diffusers, accelerate); skipped with a message otherwise (as in
CI). Upstream's code runs only in that other process (`tests/upstream/upstream_side.py`); this process never
imports it. The published-format test also reads upstream's voice presets from the shared data folder
(`VIBEVOICE_VOICES_DIR`, see tests/_shared_data.py).

- Parity: upstream builds a random-weight tiny model in its own classes and `save_pretrained`s it; both sides get
  the same text, the same voice prompt (a preset in upstream's pickle format, which upstream unpickles itself and
  our converter converts) and the same diffusion noise (upstream's draws are replaced at run time from a recorded
  tape); the speech latents and the audio are compared. The end-of-speech classifier is off on both sides (random
  weights end at random); the run is cut after a fixed number of latents.
- Published format: upstream `save_pretrained`s a random model at the published sizes; our loader loads it strictly
  (bf16) and speaks with upstream's own voice `.pt` files, converted by our converter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from tests._shared_data import real_voices_dir

from s2s_tts import tiny_model, voices

UPSTREAM_SIDE = Path(__file__).resolve().parent / "upstream" / "upstream_side.py"
PINNED_COMMIT = "e73d1e17c3754f046352014856a922f8208fb5d3"
TEXT = "Hello there, how are you today? One, two, three."
STEPS = 5
CFG = 1.5
LATENTS = 14  # two full text windows of 6 latents, and into the third
# fp32 on both sides; they differ in attention kernels and summation order only.
LATENT_TOLERANCE = 1e-3
AUDIO_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Upstream:
    python: str
    repo: Path

    def run(self, *args: str, timeout: float = 900) -> dict[str, Any]:
        cmd = [self.python, str(UPSTREAM_SIDE), "--repo", str(self.repo), *args]
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if proc.returncode != 0:
            pytest.fail(f"upstream side failed ({' '.join(args[:1])}), rc {proc.returncode}:\n{proc.stderr[-4000:]}")
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    repo, python = os.environ.get("VIBEVOICE_REPO"), os.environ.get("VIBEVOICE_PYTHON")
    if not repo or not python:
        pytest.skip(
            "upstream parity needs VIBEVOICE_REPO (a microsoft/VibeVoice checkout at "
            f"{PINNED_COMMIT[:8]}) and VIBEVOICE_PYTHON (a Python with its requirements: transformers 4.x, "
            "diffusers, accelerate); see tts-server/README.md"
        )
    repo_path = Path(repo)
    if not (repo_path / "vibevoice" / "modular" / "modeling_vibevoice_streaming_inference.py").is_file():
        pytest.fail(f"VIBEVOICE_REPO={repo} is not a microsoft/VibeVoice checkout (no vibevoice/modular/...)")
    if not Path(python).exists() and shutil.which(python) is None:
        pytest.fail(f"VIBEVOICE_PYTHON={python} does not exist")
    return Upstream(python=python, repo=repo_path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.write_tiny_model(tmp_path_factory.mktemp("tiny"), seed=1)


def test_tiny_model_files_read_the_same_in_upstreams_code(upstream: Upstream, tiny: Path) -> None:
    """Our tensor names and shapes are upstream's; upstream's tokenizer class and torch.load read our files."""
    report = upstream.run("layout", str(tiny))
    from safetensors import safe_open

    with safe_open(str(tiny / "model.safetensors"), framework="pt") as f:
        ours = {name: list(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    assert ours == report["shapes"]

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny / "tokenizer" / "tokenizer.json"))
    up_tok = report["tokenizer"]
    assert up_tok["hello"] == tok.encode("Hello there, how are you?\n", add_special_tokens=False).ids
    assert up_tok["image_pad"] == tok.token_to_id("<|image_pad|>")
    assert up_tok["speech_start_id"] == tok.token_to_id("<|vision_start|>")
    assert up_tok["eos_token_id"] == tok.token_to_id("<|endoftext|>")

    shape = voices.VoiceShape.from_model_config(json.loads((tiny / "config.json").read_text()))
    for name in tiny_model.VOICE_NAMES:
        preset = report["presets"][name]
        for part in ("lm", "tts_lm", "neg_lm", "neg_tts_lm"):
            assert preset[part]["type"] == "transformers.modeling_outputs.BaseModelOutputWithPast"
            assert preset[part]["cache"] == "transformers.cache_utils.DynamicCache"
        assert preset["lm"]["layers"] == shape.lm_layers and preset["tts_lm"]["layers"] == shape.tts_lm_layers
        assert preset["neg_tts_lm"]["hidden"] == [1, 1, shape.hidden_size]


class TapeNoise:
    """Our engine's noise source reading the recorded tape [latents, 1 + steps, 2, latent]: row 0 of each draw
    (upstream draws for both guidance halves and keeps the first)."""

    def __init__(self, tape: torch.Tensor) -> None:
        self.tape = tape[:, :, 0, :].float()

    def draw(
        self, streams: Sequence[str], frames: Sequence[int], steps: int, dim: int, device: torch.device
    ) -> torch.Tensor:
        assert steps + 1 == self.tape.shape[1] and dim == self.tape.shape[2]
        return torch.stack([self.tape[f] for f in frames]).to(device)


class _Collect:
    def __init__(self) -> None:
        self.pcm = bytearray()
        self.done: Any = None

    def audio(self, pcm16le: bytes) -> None:
        self.pcm.extend(pcm16le)

    def finish(self, done: Any) -> None:
        self.done = done

    def fail(self, error: Any) -> None:
        self.done = error


class _OurEngine:
    """Our engine, driven step by step in this thread, recording each latent and its float audio."""

    def __init__(self, model_dir: Path, dtype: str, noise: Any, max_tail_frames: int) -> None:
        from s2s_tts.vibevoice.engine import EngineOptions, VibeVoiceEngine

        options = EngineOptions(eos=False, noise=noise, seed=0, start_thread=False, max_tail_frames=max_tail_frames)
        self.engine = VibeVoiceEngine(model_dir, device="cpu", dtype=dtype, max_streams=2, options=options)
        self.latents: list[torch.Tensor] = []
        self.audio: list[torch.Tensor] = []
        diffuse, decode = self.engine._diffuse, self.engine.model.decode

        def recording_diffuse(*args: Any, **kwargs: Any) -> torch.Tensor:
            out = diffuse(*args, **kwargs)
            self.latents.append(out.detach().float().clone())
            return out

        def recording_decode(*args: Any, **kwargs: Any) -> torch.Tensor:
            out = decode(*args, **kwargs)
            self.audio.append(out.detach().float().reshape(-1).clone())
            return out

        self.engine._diffuse = recording_diffuse  # type: ignore[method-assign]
        self.engine.model.decode = recording_decode  # type: ignore[method-assign]

    def speak(self, voice: str, text: str, latents: int) -> tuple[torch.Tensor, torch.Tensor, bytes]:
        """One stream: (latents [n, latent], float audio [n * hop], PCM16) for its first `latents` frames."""
        from s2s_tts.engine_api import StreamOptions

        self.latents.clear()
        self.audio.clear()
        out = _Collect()
        stream = self.engine.open(StreamOptions(voice=voice, cfg=CFG, steps=STEPS), out)
        stream.push_text(text)
        stream.end()
        while len(self.latents) < latents and out.done is None:
            self.engine.step()
        stream.cancel()
        while out.done is None and self.engine.step():
            pass
        assert len(self.latents) >= latents, f"our engine made {len(self.latents)} latents, then {out.done}"
        return torch.cat(self.latents[:latents]), torch.cat(self.audio[:latents]), bytes(out.pcm)

    def close(self) -> None:
        self.engine.close()


def test_same_numbers_as_upstream(upstream: Upstream, tiny: Path, tmp_path: Path) -> None:
    # Upstream's own random tiny model, in its classes, written by its save_pretrained; non-trivial speech buffers
    # so their use (latent / scaling - bias before decoding) is checked too.
    up_dir = tmp_path / "upstream-tiny"
    upstream.run(
        "save-tiny", str(tiny / "config.json"), str(up_dir), "--seed", "5", "--scaling", "1.3", "--bias", "0.1"
    )
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(up_dir / name, model_dir / name)
    shutil.copytree(tiny / "tokenizer", model_dir / "tokenizer")
    voice = tiny_model.VOICE_NAMES[0]
    preset = tiny / "presets" / f"{voice}.pt"
    voices.convert_preset(preset, model_dir / "voices")

    latent_dim = int(json.loads((model_dir / "config.json").read_text())["acoustic_vae_dim"])
    tape = torch.randn(LATENTS, 1 + STEPS, 2, latent_dim, generator=torch.Generator().manual_seed(11))
    save_file({"noise": tape}, str(tmp_path / "noise.safetensors"))
    dump_path = tmp_path / "upstream.safetensors"
    upstream.run(
        "generate",
        str(up_dir),
        "--tokenizer",
        str(tiny / "tokenizer"),
        "--preset",
        str(preset),
        "--text",
        TEXT,
        "--noise",
        str(tmp_path / "noise.safetensors"),
        "--latents",
        str(LATENTS),
        "--steps",
        str(STEPS),
        "--cfg",
        str(CFG),
        "--out",
        str(dump_path),
    )
    theirs = load_file(str(dump_path))

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer" / "tokenizer.json"))
    assert theirs["tts_text_ids"][0].tolist() == tok.encode(TEXT.strip() + "\n", add_special_tokens=False).ids

    ours = _OurEngine(model_dir, "float32", TapeNoise(tape), max_tail_frames=LATENTS)
    try:
        lat, audio, pcm = ours.speak(voice, TEXT, LATENTS)
    finally:
        ours.close()
    latent_diff = (lat - theirs["latents"]).abs().max().item()
    audio_diff = (audio - theirs["audio"]).abs().max().item()
    expected_pcm = (theirs["audio"].clamp(-1.0, 1.0) * 32767.0).to(torch.int16)
    ours_pcm = torch.frombuffer(bytearray(pcm[: expected_pcm.numel() * 2]), dtype=torch.int16)
    pcm_diff = (ours_pcm.int() - expected_pcm.int()).abs().max().item()
    summary = {
        "latents": LATENTS,
        "max_abs_diff_latents": latent_diff,
        "max_abs_latent": theirs["latents"].abs().max().item(),
        "max_abs_diff_audio": audio_diff,
        "max_abs_audio": theirs["audio"].abs().max().item(),
        "max_abs_diff_pcm16": pcm_diff,
    }
    print("\nupstream parity:", json.dumps(summary), file=sys.stderr)
    assert latent_diff < LATENT_TOLERANCE, summary
    assert audio_diff < AUDIO_TOLERANCE, summary


def test_the_published_format_loads(upstream: Upstream, tiny: Path, tmp_path: Path) -> None:
    presets = real_voices_dir()
    model_dir = tmp_path / "real"
    report = upstream.run("save-real", str(model_dir), timeout=1800)
    assert report["parameters"] > 1_000_000_000
    # The published folder holds the Qwen2.5 tokenizer; random weights speak no words, so the tiny one stands in.
    shutil.copytree(tiny / "tokenizer", model_dir / "tokenizer")
    assert (
        voices.main(
            [
                "convert",
                str(presets),
                "--out",
                str(model_dir / "voices"),
                "--model-config",
                str(model_dir / "config.json"),
            ]
        )
        == 0
    )
    hop = 3200
    ours = _OurEngine(model_dir, "bfloat16", None, max_tail_frames=2)  # the loader is strict: see its tests
    try:
        assert sorted(ours.engine.voices) == ["en-Emma_woman", "en-Mike_man"]
        for voice in ("en-Mike_man", "en-Emma_woman"):
            _, audio, pcm = ours.speak(voice, "Hello there.", 2)
            assert audio.shape == (2 * hop,) and torch.isfinite(audio).all()
            assert len(pcm) >= 2 * hop * 2 and any(pcm)
            peak = audio.abs().max().item()
            print(f"\npublished format: {voice}: {len(pcm) // 2} samples, max |audio| {peak:.4f}", file=sys.stderr)
    finally:
        ours.close()
