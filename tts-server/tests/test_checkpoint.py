"""Loading the published layout: key mapping, strictness, dtype, and equal outputs through our modules and a
direct computation from the checkpoint's own tensors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import Qwen2Model
from transformers.models.vibevoice.modeling_vibevoice import VibeVoiceDiffusionHeadSinusoidalEmbedding

from s2s_tts.checkpoint_layout import checkpoint_shapes
from s2s_tts.tiny_model import real_config, tiny_config
from s2s_tts.vibevoice.checkpoint import CheckpointError, _compile, load_model, to_ours, to_upstream, upstream_names
from s2s_tts.vibevoice.config import ConfigError, load_config, parse_config, qwen2_config
from s2s_tts.vibevoice.kv_cache import SlotKVCache
from s2s_tts.vibevoice.model import TEXT_TYPE
from s2s_tts.vibevoice.random_model import random_model


def _raw(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors in float32 (the tiny model's bf16 values, exactly)."""
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118


def _edited_copy(
    tiny_dir: Path, out: Path, drop: tuple[str, ...] = (), extra: dict[str, torch.Tensor] | None = None
) -> Path:
    """A copy of the tiny model folder whose model.safetensors lacks `drop` and holds `extra` besides."""
    shutil.copytree(tiny_dir, out)
    weights = {k: v for k, v in load_file(str(out / "model.safetensors")).items() if k not in drop}
    save_file({**weights, **(extra or {})}, str(out / "model.safetensors"))
    return out


def test_every_tensor_maps_both_ways_at_real_size() -> None:
    with torch.device("meta"):
        from s2s_tts.vibevoice.model import RealtimeModel

        model = RealtimeModel(parse_config(real_config()))
    names = list(model.state_dict())
    ups = [to_upstream(n) for n in names]
    assert None not in ups
    assert [to_ours(u) for u in ups] == names  # type: ignore[arg-type]
    assert len(set(ups)) == len(ups)
    assert upstream_names(names) == dict(zip(ups, names, strict=True))
    # exactly the published tensors, less the TTS stack's token embedding that inference never reads
    published = set(checkpoint_shapes(real_config()))
    assert set(ups) == published - {"model.tts_language_model.embed_tokens.weight"}
    # the names upstream publishes (TTS-ENGINE.md): decoder, head and connector counts at real size
    assert sum(u.startswith("model.acoustic_tokenizer.decoder.") for u in ups) == 276  # type: ignore[union-attr]
    assert sum(u.startswith("model.prediction_head.") for u in ups) == 26  # type: ignore[union-attr]
    assert sum(u.startswith("model.acoustic_connector.") for u in ups) == 5  # type: ignore[union-attr]
    assert "model.acoustic_tokenizer.decoder.upsample_layers.0.0.conv.conv.weight" in ups
    assert "model.acoustic_tokenizer.decoder.stages.0.7.mixer.conv.conv.conv.weight" in ups
    assert "model.acoustic_tokenizer.decoder.stages.6.2.ffn.linear2.bias" in ups
    assert "model.prediction_head.t_embedder.mlp.2.weight" in ups
    assert "model.prediction_head.final_layer.adaLN_modulation.1.weight" in ups
    params = sum(p.numel() for p in model.parameters())
    assert 0.85e9 < params < 0.9e9  # 1.02 G published, less the TTS stack's unused 136 M token embedding


def test_loads_strictly_and_exactly(tiny_dir: Path) -> None:
    model = load_model(tiny_dir, torch.device("cpu"), torch.float32)
    raw = _raw(tiny_dir)
    for name, tensor in model.state_dict().items():
        up = to_upstream(name)
        assert up is not None
        assert torch.equal(tensor, raw[up]), name


def test_missing_and_unexpected_keys_are_named(tiny_dir: Path, tmp_path: Path) -> None:
    _edited_copy(tiny_dir, tmp_path / "a", drop=("model.prediction_head.cond_proj.weight",))
    with pytest.raises(CheckpointError, match=r"missing 1: model\.prediction_head\.cond_proj\.weight"):
        load_model(tmp_path / "a", torch.device("cpu"), torch.float32)
    _edited_copy(tiny_dir, tmp_path / "b", extra={"model.something_else.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match=r"unexpected 1: model\.something_else\.weight"):
        load_model(tmp_path / "b", torch.device("cpu"), torch.float32)
    _edited_copy(tiny_dir, tmp_path / "c", extra={"model.acoustic_connector.fc1.bias": torch.zeros(3)})
    with pytest.raises(
        CheckpointError, match=r"shape mismatch: model\.acoustic_connector\.fc1\.bias: \(3,\) vs \(64,\) for "
    ):
        load_model(tmp_path / "c", torch.device("cpu"), torch.float32)


def test_keys_inference_never_reads_are_allowed(tiny_dir: Path, tmp_path: Path) -> None:
    # what a save_pretrained folder also holds: the acoustic encoder and the text LM's final norm
    unused = {"model.acoustic_tokenizer.encoder.head.conv.conv.weight": torch.zeros(4, 4, 7)}
    unused["model.language_model.norm.weight"] = torch.ones(64)
    load_model(_edited_copy(tiny_dir, tmp_path / "m", extra=unused), torch.device("cpu"), torch.float32)


def test_the_key_table_is_checked_one_to_one() -> None:
    with pytest.raises(ValueError, match="different fields"):
        _compile([("model.layers.{i}.{w}", "layers.{i}")])
    with pytest.raises(CheckpointError, match=r"both map to model\.language_model\.layers\.0\.mlp\.up_proj\.weight"):
        upstream_names(["lm_layers.0.mlp.up_proj.weight", "lm_layers.0.mlp.up_proj.weight"])
    with pytest.raises(CheckpointError, match=r"no upstream name for our tensor made_up\.weight"):
        upstream_names(["made_up.weight"])
    # upstream's layer index is one more than ours past the stem; a key with no index of ours is not mapped
    assert to_ours("model.acoustic_tokenizer.decoder.upsample_layers.3.0.convtr.convtr.bias") == (
        "decoder.conv_layers.2.convtr.convtr.bias"
    )
    assert to_upstream("decoder.conv_layers.2.stage.1.mixer.conv.weight") == (
        "model.acoustic_tokenizer.decoder.stages.3.1.mixer.conv.conv.conv.weight"
    )
    assert to_ours("model.acoustic_tokenizer.decoder.upsample_layers.0.0.convtr.convtr.bias") is None


def test_bad_config_is_named(tmp_path: Path) -> None:
    raw = tiny_config()
    raw["acoustic_tokenizer_config"]["mixer_layer"] = "attention"
    with pytest.raises(ConfigError, match="mixer_layer"):
        parse_config(raw)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)


def test_bf16_keeps_float32_tables(tiny_dir: Path) -> None:
    model = load_model(tiny_dir, torch.device("cpu"), torch.bfloat16)
    assert model.embed_tokens.weight.dtype == torch.bfloat16
    freq = model.head.timestep_embedding.freq
    assert freq.dtype == torch.float32
    assert torch.equal(
        freq, VibeVoiceDiffusionHeadSinusoidalEmbedding.compute_default_freq(model.head.timestep_embedding.config)
    )
    assert model.rotary.inv_freq.dtype == torch.float32


def test_stacks_match_transformers_qwen2_on_the_same_weights(tiny_dir: Path) -> None:
    """Our split stacks (slot caches, masks, per-row positions) against transformers' own Qwen2Model loaded
    straight from the checkpoint's upstream-named tensors."""
    model = load_model(tiny_dir, torch.device("cpu"), torch.float32)
    cfg = model.cfg
    raw = _raw(tiny_dir)

    def reference(prefix: str, layers: int, final_norm: bool) -> Qwen2Model:
        ref = Qwen2Model(qwen2_config(cfg, layers, "sdpa")).eval()  # transformers' own attention
        sd = {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}
        sd.setdefault("embed_tokens.weight", raw["model.language_model.embed_tokens.weight"])
        sd.setdefault("norm.weight", torch.ones(cfg.lm.hidden_size))
        ref.load_state_dict(sd, strict=True)
        if not final_norm:
            ref.norm = torch.nn.Identity()
        return ref

    text_ref = reference("model.language_model.", cfg.text_layers, final_norm=False)
    tts_ref = reference("model.tts_language_model.", cfg.tts_layers, final_norm=True)
    tokens = torch.tensor([[5, 17, 42, 99, 7, 3, 250]])
    with torch.no_grad():
        want_text = text_ref(input_ids=tokens).last_hidden_state
        types = raw["model.tts_input_types.weight"][TEXT_TYPE]
        want_tts = tts_ref(inputs_embeds=want_text + types).last_hidden_state
        # ours, fed in two windows (4 then 3 tokens) on slot 1 of a 3-slot cache whose other rows hold other lengths
        lm_cache = SlotKVCache(
            cfg.text_layers, 3, cfg.lm.num_key_value_heads, cfg.lm.head_dim, 1024, model.device, model.dtype
        )
        tts_cache = SlotKVCache(
            cfg.tts_layers, 3, cfg.lm.num_key_value_heads, cfg.lm.head_dim, 1024, model.device, model.dtype
        )
        for c in (lm_cache, tts_cache):
            c.lengths[0], c.lengths[2] = 9, 2
        got_text, got_tts = [], []
        for lo, hi in ((0, 4), (4, 7)):
            h = model.text_lm(tokens[:, lo:hi], lm_cache, [1], [hi - lo])
            lm_cache.commit()
            got_text.append(h)
            got_tts.append(model.tts_lm(h, TEXT_TYPE, tts_cache, [1], [hi - lo]))
            tts_cache.commit()
    torch.testing.assert_close(torch.cat(got_text, 1), want_text, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat(got_tts, 1), want_tts, rtol=1e-5, atol=1e-5)


def _rms(x: torch.Tensor, eps: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * weight if weight is not None else y


def test_connector_eos_and_head_match_a_direct_computation(tiny_dir: Path) -> None:
    model = load_model(tiny_dir, torch.device("cpu"), torch.float32)
    raw = _raw(tiny_dir)
    cfg = json.loads((tiny_dir / "config.json").read_text())
    g = torch.Generator().manual_seed(3)
    latent = torch.randn(3, cfg["acoustic_tokenizer_config"]["vae_dim"], generator=g)
    hidden = torch.randn(3, cfg["decoder_config"]["hidden_size"], generator=g)

    def lin(x: torch.Tensor, key: str, bias: bool = True) -> torch.Tensor:
        out = x @ raw[f"{key}.weight"].T
        return out + raw[f"{key}.bias"] if bias else out

    c = "model.acoustic_connector"
    want = lin(_rms(lin(latent, f"{c}.fc1"), 1e-6, raw[f"{c}.norm.weight"]), f"{c}.fc2")
    with torch.no_grad():
        torch.testing.assert_close(model.connector(latent), want)
        want_eos = lin(torch.relu(lin(hidden, "tts_eos_classifier.fc1")), "tts_eos_classifier.fc2")[:, 0]
        torch.testing.assert_close(model.eos(hidden), want_eos)

    # the diffusion head, written out from upstream's structure and key names
    p = "model.prediction_head"
    t = torch.tensor([999.0, 400.0, 200.0])
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None] * freqs[None]
    t_emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
    t_emb = lin(torch.nn.functional.silu(lin(t_emb, f"{p}.t_embedder.mlp.0", False)), f"{p}.t_embedder.mlp.2", False)
    cond = lin(hidden, f"{p}.cond_proj", False) + t_emb
    x = lin(latent, f"{p}.noisy_images_proj", False)
    eps = cfg["diffusion_head_config"]["rms_norm_eps"]
    for i in range(cfg["diffusion_head_config"]["head_layers"]):
        shift, scale, gate = lin(torch.nn.functional.silu(cond), f"{p}.layers.{i}.adaLN_modulation.1", False).chunk(
            3, -1
        )
        mod = _rms(x, eps, raw[f"{p}.layers.{i}.norm.weight"]) * (1 + scale) + shift
        ffn = lin(
            torch.nn.functional.silu(lin(mod, f"{p}.layers.{i}.ffn.gate_proj", False))
            * lin(mod, f"{p}.layers.{i}.ffn.up_proj", False),
            f"{p}.layers.{i}.ffn.down_proj",
            False,
        )
        x = x + gate * ffn
    shift, scale = lin(torch.nn.functional.silu(cond), f"{p}.final_layer.adaLN_modulation.1", False).chunk(2, -1)
    want_head = lin(_rms(x, eps) * (1 + scale) + shift, f"{p}.final_layer.linear", False)
    with torch.no_grad():
        torch.testing.assert_close(model.head(latent, t, condition=hidden), want_head, rtol=1e-5, atol=1e-5)


def test_the_in_memory_random_model_is_the_tiny_folder_loaded(tiny_dir: Path) -> None:
    # one source of random weights: the bench's and tests' in-memory model equals the written tiny model of the seed
    loaded = load_model(tiny_dir, torch.device("cpu"), torch.float32).state_dict()
    built = random_model(tiny_config(), seed=0).state_dict()
    assert built.keys() == loaded.keys()
    assert all(torch.equal(built[k], loaded[k]) for k in built)
