"""The tiny model folder: the published layout, upstream's tensor names, a working tokenizer, voices, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from s2s_tts import tiny_model
from s2s_tts.checkpoint_layout import checkpoint_shapes, decoder_ratios
from s2s_tts.upstream_preset import read_preset
from s2s_tts.voices import VoiceShape, load_voice


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    assert tiny_model.main([str(out), "--seed", "3"]) == 0
    return out


def test_the_folder_has_the_published_layout(tiny_dir: Path) -> None:
    names = sorted(str(p.relative_to(tiny_dir)) for p in tiny_dir.rglob("*") if p.is_file())
    assert names == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "presets/en-Tiny_man.pt",
        "presets/en-Tiny_woman.pt",
        "tokenizer/merges.txt",
        "tokenizer/tokenizer.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "voices/en-Tiny_man.safetensors",
        "voices/en-Tiny_woman.safetensors",
    ]
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["model_type"] == "vibevoice_streaming"
    assert config["architectures"] == ["VibeVoiceStreamingForConditionalGenerationInference"]
    assert set(config) >= {"acoustic_tokenizer_config", "decoder_config", "diffusion_head_config"}
    # 24 kHz audio from 7.5 latents a second: the decoder keeps upstream's 3,200x upsampling.
    assert math.prod(decoder_ratios(config["acoustic_tokenizer_config"])) == 3200
    decoder = config["decoder_config"]
    assert decoder["num_hidden_layers"] - config["tts_backbone_num_hidden_layers"] >= 1


def test_weights_carry_upstreams_names_and_shapes(tiny_dir: Path) -> None:
    config = json.loads((tiny_dir / "config.json").read_text())
    expected = checkpoint_shapes(config)
    with safe_open(str(tiny_dir / "model.safetensors"), framework="pt") as f:
        got = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    assert got == expected
    weights = load_file(str(tiny_dir / "model.safetensors"))
    assert weights["model.speech_scaling_factor"].item() == 1.0
    assert weights["model.speech_bias_factor"].item() == 0.0
    assert all(torch.isfinite(t.float()).all() for t in weights.values())
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    # No acoustic encoder: the published checkpoint leaves it out.
    assert not any(".acoustic_tokenizer.encoder." in name for name in weights)


def test_the_real_layout_matches_the_published_checkpoint() -> None:
    # The published model.safetensors is 2,035,332,888 bytes of bf16: 2 bytes a parameter plus its JSON header.
    shapes = checkpoint_shapes(tiny_model.real_config())
    parameters = sum(math.prod(s) for s in shapes.values())
    assert len(shapes) == 605
    assert parameters == 1_017_626_724
    assert 0 < 2_035_332_888 - 2 * parameters < 100_000  # the header of 605 entries
    assert sum(".acoustic_tokenizer.decoder." in n for n in shapes) == 276
    assert sum(".prediction_head." in n for n in shapes) == 26
    assert sum(".acoustic_connector." in n for n in shapes) == 5


def test_the_tokenizer_encodes_text_and_knows_the_special_tokens(tiny_dir: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_dir / "tokenizer" / "tokenizer.json"))
    text = "Hello there, it's 10:30! Ünïcode too.\n"
    ids = tok.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text
    assert len(ids) < len(text.encode())  # the merges do merge
    for special in tiny_model.SPECIAL_TOKENS:
        assert tok.token_to_id(special) is not None
    assert tok.get_vocab_size(with_added_tokens=True) <= tiny_model.VOCAB_SIZE
    config = json.loads((tiny_dir / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "Qwen2Tokenizer" and config["eos_token"] == "<|endoftext|>"
    added = {v["content"]: int(k) for k, v in config["added_tokens_decoder"].items()}
    assert added["<|image_pad|>"] == tok.token_to_id("<|image_pad|>")


def test_transformers_loads_the_tokenizer(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_dir / "tokenizer"))
    end_of_text = tok.convert_tokens_to_ids("<|endoftext|>")
    assert isinstance(end_of_text, int) and tok.convert_tokens_to_ids("<|image_pad|>") == end_of_text + 12
    assert tok.decode(tok.encode("How are you?", add_special_tokens=False)) == "How are you?"


def test_voices_are_converted_from_upstream_format_presets(tiny_dir: Path) -> None:
    config = json.loads((tiny_dir / "config.json").read_text())
    shape = VoiceShape.from_model_config(config)
    for name in tiny_model.VOICE_NAMES:
        voice = load_voice(tiny_dir / "voices" / f"{name}.safetensors", "cpu", torch.float32, expect=shape)
        raw = read_preset(tiny_dir / "presets" / f"{name}.pt")
        assert torch.equal(voice.tts_lm.keys[-1], raw[f"tts_lm.key.{shape.tts_lm_layers - 1}"].float())
        assert voice.neg_lm.length == voice.neg_tts_lm.length == 1
        assert voice.lm.length > 1 and voice.tts_lm.length > voice.lm.length


def test_the_same_seed_writes_the_same_model_and_another_seed_another(tiny_dir: Path, tmp_path: Path) -> None:
    again = tiny_model.write_tiny_model(tmp_path / "again", seed=3)
    other = tiny_model.write_tiny_model(tmp_path / "other", seed=4)
    for name in ("config.json", "preprocessor_config.json", "tokenizer/tokenizer.json", "tokenizer/merges.txt"):
        assert (again / name).read_bytes() == (tiny_dir / name).read_bytes()
    first, second = load_file(str(tiny_dir / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert all(torch.equal(first[k], second[k]) for k in first)
    third = load_file(str(other / "model.safetensors"))
    assert not torch.equal(
        first["model.prediction_head.cond_proj.weight"], third["model.prediction_head.cond_proj.weight"]
    )
    for name in tiny_model.VOICE_NAMES:
        a = load_file(str(tiny_dir / "voices" / f"{name}.safetensors"))
        b = load_file(str(again / "voices" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_our_engine_speaks_with_the_tiny_model(tiny_dir: Path) -> None:
    from s2s_tts.engine_api import StreamOptions
    from s2s_tts.vibevoice.engine import EngineOptions, VibeVoiceEngine

    class Collect:
        def __init__(self) -> None:
            self.pcm = bytearray()
            self.done: object = None

        def audio(self, pcm16le: bytes) -> None:
            self.pcm.extend(pcm16le)

        def finish(self, done: object) -> None:
            self.done = done

        def fail(self, error: object) -> None:
            self.done = error

    options = EngineOptions(eos=False, seed=0, start_thread=False, max_tail_frames=2)
    engine = VibeVoiceEngine(tiny_dir, device="cpu", dtype="float32", max_streams=1, options=options)
    try:
        assert engine.voices == list(tiny_model.VOICE_NAMES)
        out = Collect()
        stream = engine.open(StreamOptions(voice="en-Tiny_woman", cfg=1.5, steps=2), out)
        stream.push_text("Hi there.")
        stream.end()
        for _ in range(50):
            if out.done is not None or not engine.step():
                break
    finally:
        engine.close()
    assert out.done is not None and not isinstance(out.done, Exception), out.done
    samples = len(out.pcm) // 2
    assert samples > 0 and samples % 3200 == 0 and any(out.pcm)
