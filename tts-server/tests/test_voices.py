"""Voice presets: upstream's pickles read without transformers 4, converted, loaded; unsafe pickles refused."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from _shared_data import real_voices_dir
from s2s_tts import voices
from s2s_tts.upstream_preset import PARTS, PresetError, UnsafePickleError, read_preset, write_preset
from s2s_tts.voices import VoiceFormatError, VoiceShape, convert_preset, load_voice

REAL_SHAPE = VoiceShape(hidden_size=896, lm_layers=4, tts_lm_layers=20, kv_heads=2, head_dim=64)
# The parts of the published config.json that give a voice's shape (REAL_SHAPE).
REAL_CONFIG = {
    "tts_backbone_num_hidden_layers": 20,
    "decoder_config": {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
    },
}


def _tiny_tensors(lm_len: int = 3, tts_len: int = 5, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    out: dict[str, torch.Tensor] = {}
    for part, layers, length in (("lm", 1, lm_len), ("tts_lm", 2, tts_len), ("neg_lm", 1, 1), ("neg_tts_lm", 2, 1)):
        out[f"{part}.last_hidden_state"] = torch.randn(1, length, 8, generator=g).to(dtype)
        for i in range(layers):
            out[f"{part}.key.{i}"] = torch.randn(1, 2, length, 4, generator=g).to(dtype)
            out[f"{part}.value.{i}"] = torch.randn(1, 2, length, 4, generator=g).to(dtype)
    return out


def test_real_preset_converts_with_its_shapes_and_dtype(tmp_path: Path) -> None:
    src = real_voices_dir() / "en-Mike_man.pt"
    out = convert_preset(src, tmp_path, expect=REAL_SHAPE)
    assert out == tmp_path / "en-Mike_man.safetensors"
    voice = load_voice(out, "cpu", None, expect=REAL_SHAPE)
    assert voice.name == "en-Mike_man"
    assert (voice.lm.length, voice.tts_lm.length, voice.neg_lm.length, voice.neg_tts_lm.length) == (49, 148, 1, 1)
    assert (voice.lm.layers, voice.tts_lm.layers, voice.neg_lm.layers, voice.neg_tts_lm.layers) == (4, 20, 4, 20)
    assert voice.lm.last_hidden_state.shape == (1, 49, 896)
    assert voice.tts_lm.keys[19].shape == (1, 2, 148, 64)
    assert voice.neg_tts_lm.values[0].shape == (1, 2, 1, 64)
    assert voice.lm.last_hidden_state.dtype == torch.bfloat16
    assert len(voice.source_sha256) == 64 and voice.source_sha256 == voices.sha256_file(src)
    # The converted tensors are the preset's, bit for bit.
    raw = read_preset(src)
    assert torch.equal(voice.tts_lm.keys[7], raw["tts_lm.key.7"])
    assert torch.equal(voice.neg_lm.last_hidden_state, raw["neg_lm.last_hidden_state"])
    # Cast on load.
    as_f32 = load_voice(out, "cpu", torch.float32)
    assert as_f32.lm.keys[0].dtype == torch.float32
    assert torch.equal(as_f32.lm.keys[0], voice.lm.keys[0].float())


def test_cli_converts_a_folder_of_real_presets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = real_voices_dir()
    assert voices.main(["convert", str(folder), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["en-Emma_woman.safetensors", "en-Mike_man.safetensors"]
    emma = load_voice(tmp_path / "en-Emma_woman.safetensors", "cpu", None, expect=REAL_SHAPE)
    assert emma.neg_lm.length == 1 and emma.lm.length > 1
    assert "en-Emma_woman.pt ->" in capsys.readouterr().out


def test_round_trip_through_upstreams_pickle_format(tmp_path: Path) -> None:
    tensors = _tiny_tensors()
    write_preset(tensors, tmp_path / "tiny.pt")
    back = read_preset(tmp_path / "tiny.pt")
    assert set(back) == set(tensors)
    for name, t in tensors.items():
        assert torch.equal(back[name], t) and back[name].dtype == t.dtype
    out = convert_preset(tmp_path / "tiny.pt", tmp_path / "voices")
    voice = load_voice(out, "cpu", None, expect=VoiceShape(8, 1, 2, 2, 4))
    assert torch.equal(voice.tts_lm.values[1], tensors["tts_lm.value.1"])
    assert load_file(str(out)).keys() == tensors.keys()


def test_written_preset_names_the_classes_the_real_presets_name(tmp_path: Path) -> None:
    write_preset(_tiny_tensors(), tmp_path / "tiny.pt")
    import pickletools

    def globals_of(path: Path) -> set[str]:
        with zipfile.ZipFile(path) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        found: set[str] = set()
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                found.add(str(arg))
        return found

    ours = globals_of(tmp_path / "tiny.pt")
    assert "transformers.modeling_outputs BaseModelOutputWithPast" in ours
    assert "transformers.cache_utils DynamicCache" in ours
    # Exactly the names the real presets use (skips here when they are absent).
    assert ours == globals_of(real_voices_dir() / "en-Mike_man.pt")


class _Evil:
    """Unpickling this runs `touch MARKER` through os.system, unless the unpickler refuses it first."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_naming_another_callable_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"lm": _Evil(marker)}, path)
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        read_preset(path)
    assert not marker.exists()
    # A plain pickle (not a torch zip) is refused too, not unpickled.
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"lm": _Evil(marker)}, protocol=2))
    with pytest.raises(PresetError):
        read_preset(plain)
    assert not marker.exists()
    # The marker proves the payload works when unpickled without restriction.
    pickle.loads(plain.read_bytes())
    assert marker.exists()


def test_the_cli_reports_a_refused_pickle_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"lm": _Evil(tmp_path / "ran")}, tmp_path / "evil.pt")
    assert voices.main(["convert", str(tmp_path / "evil.pt"), "--out", str(tmp_path / "out")]) == 1
    assert "refusing" in capsys.readouterr().err
    assert not (tmp_path / "out" / "evil.safetensors").exists()


def test_malformed_presets_get_named_errors(tmp_path: Path) -> None:
    torch.save({"lm": torch.zeros(1)}, tmp_path / "wrong_keys.pt")
    with pytest.raises(PresetError, match="a preset is a dict with keys"):
        read_preset(tmp_path / "wrong_keys.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a pickle at all")
    with pytest.raises(PresetError, match="not a readable voice preset"):
        read_preset(tmp_path / "garbage.pt")


def test_converted_voices_are_checked_on_load(tmp_path: Path) -> None:
    tensors = _tiny_tensors()
    voices.write_voice(tensors, tmp_path / "ok.safetensors", "0" * 64)
    with pytest.raises(VoiceFormatError, match="this model is"):
        load_voice(tmp_path / "ok.safetensors", "cpu", None, expect=VoiceShape(8, 4, 20, 2, 4))

    broken = dict(tensors)
    del broken["tts_lm.value.1"]
    save_file(broken, str(tmp_path / "missing.safetensors"), metadata={"format": voices.FORMAT})
    with pytest.raises(VoiceFormatError, match="2 key and 1 value layers"):
        load_voice(tmp_path / "missing.safetensors")

    wrong_len = dict(tensors)
    wrong_len["neg_lm.last_hidden_state"] = torch.zeros(1, 2, 8, dtype=torch.bfloat16)
    save_file(wrong_len, str(tmp_path / "neg.safetensors"), metadata={"format": voices.FORMAT})
    with pytest.raises(VoiceFormatError, match="negative prompt has 1"):
        load_voice(tmp_path / "neg.safetensors")

    save_file(tensors, str(tmp_path / "nofmt.safetensors"))
    with pytest.raises(VoiceFormatError, match="format"):
        load_voice(tmp_path / "nofmt.safetensors")

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(VoiceFormatError, match="not a readable"):
        load_voice(tmp_path / "junk.safetensors")


def test_voice_shape_from_upstream_config() -> None:
    assert VoiceShape.from_model_config(REAL_CONFIG) == REAL_SHAPE


def test_preset_parts_are_the_four_upstream_uses() -> None:
    assert PARTS == ("lm", "tts_lm", "neg_lm", "neg_tts_lm")


def test_the_cli_refuses_voices_that_do_not_fit_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_preset(_tiny_tensors(), tmp_path / "tiny.pt")
    (tmp_path / "config.json").write_text(json.dumps(REAL_CONFIG))
    args = ["convert", str(tmp_path / "tiny.pt"), "--out", str(tmp_path / "out"), "--model-config"]
    assert voices.main([*args, str(tmp_path / "config.json")]) == 1
    assert "this model is" in capsys.readouterr().err
    assert not (tmp_path / "out" / "tiny.safetensors").exists()


def test_python_dash_m_runs_the_converter(tmp_path: Path) -> None:
    write_preset(_tiny_tensors(), tmp_path / "tiny.pt")
    src = Path(voices.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "s2s_tts.voices", "convert", str(tmp_path), "--out", str(tmp_path / "voices")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert load_voice(tmp_path / "voices" / "tiny.safetensors").tts_lm.layers == 2
