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

from _shared_data import real_voices_dir
from s2s_tts import tiny_model, voices

UPSTREAM_SIDE = Path(__file__).resolve().parent / "upstream" / "upstream_side.py"
PINNED_COMMIT = "e73d1e17c3754f046352014856a922f8208fb5d3"
TEXTS = ("Hello there, how are you today? One, two, three.", "It's 10:30, let's go!")
STEPS = 5
CFG = 1.5
LATENTS = 30  # every text window (6 latents each) and windows past the end of the text
# (latents, audio) max abs difference allowed. The two sides differ in kernels and summation order only: in fp32
# that is ~1e-5 here; bf16 rounds each op to 8 bits (one ulp is 0.06 at the latents' size of ~8), measured ~0.3.
# A real mistake (the noise rows swapped, say) differs by 10 and more.
TOLERANCE = {"float32": (1e-3, 1e-3), "bfloat16": (1.0, 1.5)}


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
    """Our engine's noise source reading recorded tapes [latents, 1 + steps, 2, latent], one per stream: row 0 of
    each draw (upstream draws for both guidance halves and keeps the first)."""

    def __init__(self) -> None:
        self.tapes: dict[str, torch.Tensor] = {}

    def add(self, stream_id: str, tape: torch.Tensor) -> None:
        self.tapes[stream_id] = tape[:, :, 0, :].float()

    def draw(
        self, streams: Sequence[str], frames: Sequence[int], steps: int, dim: int, device: torch.device
    ) -> torch.Tensor:
        rows = []
        for stream, frame in zip(streams, frames, strict=True):
            tape = self.tapes[stream]
            assert steps + 1 == tape.shape[1] and dim == tape.shape[2]
            rows.append(tape[frame])
        return torch.stack(rows).to(device)


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


@dataclass
class Spoken:
    latents: torch.Tensor  # [n, latent]
    audio: torch.Tensor  # [n * hop] float, as decoded
    pcm: bytes  # what the stream sent


class _OurEngine:
    """Our engine, driven step by step in this thread, recording each stream's latents and float audio."""

    def __init__(self, model_dir: Path, dtype: str, noise: Any, max_tail_frames: int, max_streams: int = 2) -> None:
        from s2s_tts.vibevoice.engine import EngineOptions, VibeVoiceEngine

        options = EngineOptions(eos=False, noise=noise, seed=0, start_thread=False, max_tail_frames=max_tail_frames)
        self.engine = VibeVoiceEngine(model_dir, device="cpu", dtype=dtype, max_streams=max_streams, options=options)
        self.latents: dict[str, list[torch.Tensor]] = {}
        self.audio: dict[str, list[torch.Tensor]] = {}
        diffuse, decode = self.engine._diffuse, self.engine.model.decode

        def recording_diffuse(streams: Sequence[Any], idx: list[int], *args: Any, **kwargs: Any) -> torch.Tensor:
            out = diffuse(streams, idx, *args, **kwargs)
            for row, i in enumerate(idx):
                self.latents.setdefault(streams[i].id, []).append(out[row].detach().float().clone())
            return out

        def recording_decode(latents: torch.Tensor, cache: Any, slots: list[int]) -> torch.Tensor:
            out = decode(latents, cache, slots)
            by_slot = {s.slot: s.id for s in self.engine._active.values()}
            for row, slot in enumerate(slots):
                self.audio.setdefault(by_slot[slot], []).append(out[row].detach().float().reshape(-1).clone())
            return out

        self.engine._diffuse = recording_diffuse  # type: ignore[method-assign]
        self.engine.model.decode = recording_decode  # type: ignore[method-assign]

    def speak(
        self,
        requests: Sequence[tuple[str, str]],
        latents: int,
        noise: TapeNoise | None = None,
        tapes: Sequence[torch.Tensor] = (),
    ) -> list[Spoken]:
        """Streams (voice, text) opened together and stepped as one batch until each has `latents` frames."""
        from s2s_tts.engine_api import StreamOptions

        self.latents.clear()
        self.audio.clear()
        outs = [_Collect() for _ in requests]
        streams = []
        for i, ((voice, text), out) in enumerate(zip(requests, outs, strict=True)):
            stream = self.engine.open(StreamOptions(voice=voice, cfg=CFG, steps=STEPS), out)
            if noise is not None:
                noise.add(stream.id, tapes[i])
            stream.push_text(text)
            stream.end()
            streams.append(stream)

        def behind() -> bool:
            pairs = zip(streams, outs, strict=True)
            return any(len(self.latents.get(s.id, [])) < latents and o.done is None for s, o in pairs)

        while behind():
            self.engine.step()
        for stream in streams:
            stream.cancel()
        while any(o.done is None for o in outs) and self.engine.step():
            pass
        spoken = []
        for stream, out in zip(streams, outs, strict=True):
            got = self.latents.get(stream.id, [])
            assert len(got) >= latents, f"our engine made {len(got)} latents for {stream.id}, then {out.done}"
            spoken.append(
                Spoken(torch.stack(got[:latents]), torch.cat(self.audio[stream.id][:latents]), bytes(out.pcm))
            )
        return spoken

    def close(self) -> None:
        self.engine.close()


def _compare(ours: Spoken, theirs: dict[str, torch.Tensor]) -> dict[str, float]:
    expected_pcm = (theirs["audio"].clamp(-1.0, 1.0) * 32767.0).to(torch.int16)
    ours_pcm = torch.frombuffer(bytearray(ours.pcm[: expected_pcm.numel() * 2]), dtype=torch.int16)
    return {
        "max_abs_diff_latents": (ours.latents - theirs["latents"]).abs().max().item(),
        "max_abs_latent": theirs["latents"].abs().max().item(),
        "max_abs_diff_audio": (ours.audio - theirs["audio"]).abs().max().item(),
        "max_abs_audio": theirs["audio"].abs().max().item(),
        "max_abs_diff_pcm16": (ours_pcm.int() - expected_pcm.int()).abs().max().item(),
    }


@dataclass(frozen=True)
class ParityCase:
    model_dir: Path  # upstream's checkpoint with our tokenizer and converted voices
    upstream_dir: Path  # upstream's save_pretrained folder
    requests: list[tuple[str, str]]  # (voice, text)
    presets: list[Path]
    tapes: list[torch.Tensor]


@pytest.fixture(scope="module")
def parity_case(upstream: Upstream, tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> ParityCase:
    # Upstream's own random tiny model, in its classes, written by its save_pretrained; non-trivial speech buffers
    # so their use (latent / scaling - bias before decoding) is checked too.
    tmp = tmp_path_factory.mktemp("parity")
    up_dir = tmp / "upstream-tiny"
    args = ("--seed", "5", "--scaling", "1.3", "--bias", "0.1")
    upstream.run("save-tiny", str(tiny / "config.json"), str(up_dir), *args)
    model_dir = tmp / "model"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(up_dir / name, model_dir / name)
    shutil.copytree(tiny / "tokenizer", model_dir / "tokenizer")
    latent_dim = int(json.loads((model_dir / "config.json").read_text())["acoustic_vae_dim"])
    # Two voices (prompts of different lengths) and texts; upstream speaks each alone, ours both in one batch.
    requests = list(zip(tiny_model.VOICE_NAMES, TEXTS, strict=True))
    presets = [tiny / "presets" / f"{voice}.pt" for voice, _ in requests]
    for preset in presets:
        voices.convert_preset(preset, model_dir / "voices")
    tapes = [
        torch.randn(LATENTS, 1 + STEPS, 2, latent_dim, generator=torch.Generator().manual_seed(11 + i))
        for i in range(len(requests))
    ]
    return ParityCase(model_dir, up_dir, requests, presets, tapes)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_same_numbers_as_upstream(upstream: Upstream, parity_case: ParityCase, dtype: str, tmp_path: Path) -> None:
    case = parity_case
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(case.model_dir / "tokenizer" / "tokenizer.json"))
    dumps = []
    for i, ((_, text), preset, tape) in enumerate(zip(case.requests, case.presets, case.tapes, strict=True)):
        save_file({"noise": tape}, str(tmp_path / f"noise{i}.safetensors"))
        upstream.run(
            "generate", str(case.upstream_dir), "--tokenizer", str(case.model_dir / "tokenizer"),
            "--preset", str(preset), "--text", text, "--noise", str(tmp_path / f"noise{i}.safetensors"),
            "--latents", str(LATENTS), "--steps", str(STEPS), "--cfg", str(CFG), "--dtype", dtype,
            "--out", str(tmp_path / f"upstream{i}.safetensors"),
        )  # fmt: skip
        theirs = load_file(str(tmp_path / f"upstream{i}.safetensors"))
        # Past the end of the text (upstream then runs windows without text), so the tail is compared too.
        text_ids = theirs["tts_text_ids"][0].tolist()
        assert text_ids == tok.encode(text.strip() + "\n", add_special_tokens=False).ids
        assert 6 * -(-len(text_ids) // 5) < LATENTS
        dumps.append(theirs)

    noise = TapeNoise()
    ours = _OurEngine(case.model_dir, dtype, noise, max_tail_frames=LATENTS)
    try:
        spoken = ours.speak(case.requests, LATENTS, noise, case.tapes)
    finally:
        ours.close()
    summaries: list[dict[str, Any]] = []
    for (voice, _), mine, theirs in zip(case.requests, spoken, dumps, strict=True):
        summary: dict[str, Any] = {"dtype": dtype, "voice": voice, "latents": LATENTS, **_compare(mine, theirs)}
        print("\nupstream parity:", json.dumps(summary), file=sys.stderr)
        summaries.append(summary)
    latent_tolerance, audio_tolerance = TOLERANCE[dtype]
    for summary in summaries:
        assert summary["max_abs_diff_latents"] < latent_tolerance, summary
        assert summary["max_abs_diff_audio"] < audio_tolerance, summary


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
            (spoken,) = ours.speak([(voice, "Hello there.")], 2)
            assert spoken.audio.shape == (2 * hop,) and torch.isfinite(spoken.audio).all()
            assert len(spoken.pcm) >= 2 * hop * 2 and any(spoken.pcm)
            peak = spoken.audio.abs().max().item()
            print(
                f"\npublished format: {voice}: {len(spoken.pcm) // 2} samples, max |audio| {peak:.4f}", file=sys.stderr
            )
    finally:
        ours.close()
