"""The upstream side of the parity tests: runs under upstream's Python (transformers 4.x), never under ours.

Run as `$VIBEVOICE_PYTHON tests/upstream/upstream_side.py --repo $VIBEVOICE_REPO COMMAND ...` by
tests/test_upstream_parity.py. It imports microsoft/VibeVoice from the checkout given (read-only: nothing in it is
edited; the diffusion noise is injected by patching names at run time) and writes plain files (JSON, safetensors)
that our side reads. Commands:

- `save-tiny CONFIG OUT --seed N`: a random-weight model in upstream's classes from CONFIG (a config.json), every
  parameter redrawn from a seeded generator (upstream's own init zeroes the diffusion head's output layers, which
  would make every latent the same), the speech buffers set, written by upstream's `save_pretrained`.
- `save-real OUT`: the same at the published sizes (hidden 896, 4 + 20 layers, vocab 151,936), bf16, upstream's own
  init, the speech buffers set (they start as NaN).
- `layout MODEL_DIR`: the tensor names and shapes upstream's model has for MODEL_DIR/config.json (without the
  acoustic encoder, which the published checkpoint leaves out), and what upstream's own loaders make of the folder's
  tokenizer/ and presets/*.pt.
- `generate MODEL_DIR --preset PT --text TEXT --noise NOISE --latents N --out OUT`: upstream's
  `generate()` with the demo's scheduler (`sde-dpmsolver++`, `squaredcos_cap_v2`), the end-of-speech classifier
  forced off, every Gaussian draw of the sampler taken in order from NOISE (a safetensors `noise` tensor
  [N, 1 + steps, 2, latent]: the initial latent, then one draw per solver step), stopped after N speech latents;
  writes the text token ids, the latents and the audio of each latent.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch


def _import_upstream(repo: Path) -> None:
    sys.path.insert(0, str(repo))


def _upstream_classes() -> tuple[Any, Any]:
    from vibevoice.modular.configuration_vibevoice_streaming import VibeVoiceStreamingConfig
    from vibevoice.modular.modeling_vibevoice_streaming_inference import (
        VibeVoiceStreamingForConditionalGenerationInference,
    )

    return VibeVoiceStreamingConfig, VibeVoiceStreamingForConditionalGenerationInference


def _redraw(model: torch.nn.Module, seed: int) -> None:
    """Every parameter from a seeded generator, at a scale that keeps activations near unit size."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
                value = 1.0 + 0.1 * noise
            elif leaf in ("gamma", "ffn_gamma"):
                value = 0.3 + 0.05 * noise
            elif leaf == "bias":
                value = 0.02 * noise
            elif "embed_tokens" in name or "tts_input_types" in name:
                value = noise
            elif "convtr" in name:
                value = noise / math.sqrt(2 * p.shape[0])
            else:
                value = noise / math.sqrt(max(1, math.prod(p.shape[1:])))
            p.copy_(value.to(p.dtype))


def _set_speech_buffers(model: Any, scaling: float, bias: float) -> None:
    with torch.no_grad():
        model.model.speech_scaling_factor.fill_(scaling)
        model.model.speech_bias_factor.fill_(bias)


def cmd_save_tiny(args: argparse.Namespace) -> dict[str, Any]:
    config_cls, model_cls = _upstream_classes()
    config = config_cls.from_dict(json.loads(Path(args.config).read_text()))
    config.torch_dtype = torch.float32
    torch.manual_seed(args.seed)
    model = model_cls(config).eval()
    _redraw(model, args.seed)
    _set_speech_buffers(model, args.scaling, args.bias)
    model.save_pretrained(args.out)
    return {"saved": str(args.out), "parameters": sum(p.numel() for p in model.parameters())}


def real_config_dict() -> dict[str, Any]:
    """The published model's config (structure and sizes of microsoft/VibeVoice-Realtime-0.5B's config.json)."""
    return {
        "model_type": "vibevoice_streaming",
        "architectures": ["VibeVoiceStreamingForConditionalGenerationInference"],
        "acoustic_vae_dim": 64,
        "tts_backbone_num_hidden_layers": 20,
        "torch_dtype": "bfloat16",
        "acoustic_tokenizer_config": {
            "causal": True,
            "channels": 1,
            "conv_bias": True,
            "conv_norm": "none",
            "corpus_normalize": 0.0,
            "decoder_depths": None,
            "decoder_n_filters": 32,
            "decoder_ratios": [8, 5, 5, 4, 2, 2],
            "disable_last_norm": True,
            "encoder_depths": "3-3-3-3-3-3-8",
            "encoder_n_filters": 32,
            "encoder_ratios": [8, 5, 5, 4, 2, 2],
            "fix_std": 0.5,
            "layer_scale_init_value": 1e-6,
            "layernorm": "RMSNorm",
            "layernorm_elementwise_affine": True,
            "layernorm_eps": 1e-5,
            "mixer_layer": "depthwise_conv",
            "pad_mode": "constant",
            "std_dist_type": "gaussian",
            "vae_dim": 64,
            "weight_init_value": 0.01,
        },
        "decoder_config": {
            "model_type": "qwen2",
            "hidden_size": 896,
            "intermediate_size": 4864,
            "max_position_embeddings": 8192,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
            "vocab_size": 151936,
            "rope_theta": 1000000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
            "max_window_layers": 24,
            "sliding_window": None,
            "rope_scaling": None,
            "use_cache": True,
        },
        "diffusion_head_config": {
            "ddpm_batch_mul": 4,
            "ddpm_beta_schedule": "cosine",
            "ddpm_num_inference_steps": 20,
            "ddpm_num_steps": 1000,
            "diffusion_type": "ddpm",
            "head_ffn_ratio": 3.0,
            "head_layers": 4,
            "hidden_size": 896,
            "latent_size": 64,
            "prediction_type": "v_prediction",
            "rms_norm_eps": 1e-5,
            "speech_vae_dim": 64,
        },
    }


def cmd_save_real(args: argparse.Namespace) -> dict[str, Any]:
    config_cls, model_cls = _upstream_classes()
    config = config_cls.from_dict(real_config_dict())
    config.torch_dtype = torch.bfloat16
    torch.manual_seed(args.seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 directly: half the memory of an fp32 init
    try:
        model = model_cls(config).eval()
    finally:
        torch.set_default_dtype(previous)
    _set_speech_buffers(model, 1.0, 0.0)
    model.save_pretrained(args.out)
    return {"saved": str(args.out), "parameters": sum(p.numel() for p in model.parameters())}


def cmd_layout(args: argparse.Namespace) -> dict[str, Any]:
    config_cls, model_cls = _upstream_classes()
    folder = Path(args.model_dir)
    config = config_cls.from_dict(json.loads((folder / "config.json").read_text()))
    config.torch_dtype = torch.float32
    model = model_cls(config)  # a tiny config: building it is cheap (the meta device trips on its init)
    shapes = {
        name: list(t.shape)
        for name, t in model.state_dict().items()
        if not name.startswith("model.acoustic_tokenizer.encoder.")
    }
    report: dict[str, Any] = {"shapes": shapes}
    tokenizer_dir = folder / "tokenizer"
    if tokenizer_dir.is_dir():
        from vibevoice.modular.modular_vibevoice_text_tokenizer import VibeVoiceTextTokenizerFast

        tok = VibeVoiceTextTokenizerFast.from_pretrained(str(tokenizer_dir))
        report["tokenizer"] = {
            "size": len(tok),
            "image_pad": tok.convert_tokens_to_ids("<|image_pad|>"),
            "speech_start_id": tok.speech_start_id,
            "speech_end_id": tok.speech_end_id,
            "speech_diffusion_id": tok.speech_diffusion_id,
            "eos_token_id": tok.eos_token_id,
            "pad_id": tok.pad_id,
            "hello": tok.encode("Hello there, how are you?\n", add_special_tokens=False),
        }
    presets = {}
    for pt in sorted((folder / "presets").glob("*.pt")):
        loaded = torch.load(pt, map_location="cpu", weights_only=False)
        presets[pt.stem] = {
            part: {
                "type": f"{type(out).__module__}.{type(out).__name__}",
                "cache": f"{type(out.past_key_values).__module__}.{type(out.past_key_values).__name__}",
                "hidden": list(out.last_hidden_state.shape),
                "layers": len(out.past_key_values.key_cache),
                "key0": list(out.past_key_values.key_cache[0].shape),
            }
            for part, out in loaded.items()
        }
    report["presets"] = presets
    return report


class _Stop(Exception):
    """Raised inside generate() once the requested number of speech latents has been decoded."""


class _NoiseTape:
    """Hands out the recorded noise [latents, 1 + steps, 2, latent] in order: per latent the initial draw, then one
    per solver step. A draw of another kind or shape, or past the end, is an error."""

    def __init__(self, noise: torch.Tensor) -> None:
        self.per_latent = noise.shape[1]
        self.flat = noise.reshape(-1, *noise.shape[-2:])
        self.used = 0

    def draw(self, shape: tuple[int, ...], kind: str) -> torch.Tensor:
        want = "initial" if self.used % self.per_latent == 0 else "step"
        if kind != want:
            raise RuntimeError(f"noise draw {self.used} is a {kind} draw, the tape expects a {want} draw")
        if tuple(shape) != tuple(self.flat.shape[1:]):
            raise RuntimeError(
                f"noise draw {self.used} has shape {tuple(shape)}, the tape {tuple(self.flat.shape[1:])}"
            )
        if self.used >= self.flat.shape[0]:
            raise RuntimeError("the noise tape is exhausted")
        value = self.flat[self.used].clone()
        self.used += 1
        return value


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from safetensors.torch import load_file, save_file
    from vibevoice.modular import modeling_vibevoice_streaming_inference as inference_module
    from vibevoice.modular.modular_vibevoice_text_tokenizer import VibeVoiceTextTokenizerFast
    from vibevoice.processor.vibevoice_streaming_processor import VibeVoiceStreamingProcessor
    from vibevoice.schedule import dpm_solver

    _, model_cls = _upstream_classes()
    folder = Path(args.model_dir)
    dtype = getattr(torch, args.dtype)
    model = model_cls.from_pretrained(str(folder), torch_dtype=dtype, device_map="cpu", attn_implementation="sdpa")
    model.eval()
    # As the demo server does (demo/web/app.py).
    model.model.noise_scheduler = model.model.noise_scheduler.from_config(
        model.model.noise_scheduler.config, algorithm_type="sde-dpmsolver++", beta_schedule="squaredcos_cap_v2"
    )
    model.set_ddpm_inference_steps(num_steps=args.steps)

    tokenizer = VibeVoiceTextTokenizerFast.from_pretrained(str(Path(args.tokenizer or folder / "tokenizer")))
    processor = VibeVoiceStreamingProcessor(tokenizer=tokenizer, audio_processor=None)
    prompt = torch.load(args.preset, map_location="cpu", weights_only=False)
    inputs = processor.process_input_with_cached_prompt(
        text=args.text, cached_prompt=prompt, padding=True, return_tensors="pt", return_attention_mask=True
    )

    noise = load_file(args.noise)["noise"]
    if noise.shape[1] != 1 + args.steps or noise.shape[0] < args.latents:
        raise SystemExit(f"noise tape {list(noise.shape)} does not fit {args.latents} latents of {args.steps} steps")
    tape = _NoiseTape(noise[: args.latents].float())
    latent_dim = int(model.config.acoustic_vae_dim)

    real_randn, real_randn_tensor = torch.randn, dpm_solver.randn_tensor

    def taped_randn(*size: Any, **kwargs: Any) -> torch.Tensor:
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
        if len(shape) == 2 and shape[1] == latent_dim:
            return tape.draw(shape, "initial").to(kwargs.get("dtype") or torch.float32)
        return real_randn(*size, **kwargs)

    def taped_randn_tensor(shape: Any, generator: Any = None, device: Any = None, dtype: Any = None, **_: Any):
        return tape.draw(tuple(shape), "step").to(device=device, dtype=dtype or torch.float32)

    latents: list[torch.Tensor] = []
    audio: list[torch.Tensor] = []
    real_sample = model.sample_speech_tokens
    real_decode = model.model.acoustic_tokenizer.decode

    def recording_sample(*a: Any, **k: Any) -> torch.Tensor:
        out = real_sample(*a, **k)
        latents.append(out.detach().float().clone())
        return out

    def recording_decode(*a: Any, **k: Any) -> torch.Tensor:
        out = real_decode(*a, **k)
        audio.append(out.detach().float().clone())
        if len(audio) >= args.latents:
            raise _Stop
        return out

    class NeverEnds(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.new_full((*x.shape[:-1], 1), -1e4)

    model.sample_speech_tokens = recording_sample
    model.model.acoustic_tokenizer.decode = recording_decode
    model.tts_eos_classifier = NeverEnds()
    inference_module.torch.randn = taped_randn  # the initial latent (torch.randn in sample_speech_tokens)
    dpm_solver.randn_tensor = taped_randn_tensor  # each sde-dpmsolver++ step's noise
    try:
        model.generate(
            **inputs,
            max_new_tokens=None,
            cfg_scale=args.cfg,
            tokenizer=tokenizer,
            generation_config={"do_sample": False},
            all_prefilled_outputs=copy.deepcopy(prompt),
            show_progress_bar=False,
        )
    except _Stop:
        pass
    finally:
        inference_module.torch.randn = real_randn
        dpm_solver.randn_tensor = real_randn_tensor
    if len(latents) < args.latents:
        raise SystemExit(f"upstream generated {len(latents)} latents, {args.latents} asked")
    if tape.used != args.latents * (1 + args.steps):
        raise SystemExit(f"upstream drew {tape.used} noise tensors, {args.latents * (1 + args.steps)} expected")
    save_file(
        {
            "tts_text_ids": inputs["tts_text_ids"].contiguous(),
            "latents": torch.cat(latents[: args.latents], dim=0).contiguous(),
            "audio": torch.cat([a.reshape(-1) for a in audio[: args.latents]]).contiguous(),
        },
        args.out,
    )
    return {"latents": args.latents, "noise_draws": tape.used, "text_tokens": int(inputs["tts_text_ids"].shape[1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, type=Path, help="a microsoft/VibeVoice checkout")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("save-tiny")
    p.add_argument("config")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scaling", type=float, default=1.0)
    p.add_argument("--bias", type=float, default=0.0)
    p = sub.add_parser("save-real")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("layout")
    p.add_argument("model_dir")
    p = sub.add_parser("generate")
    p.add_argument("model_dir")
    p.add_argument("--preset", required=True)
    p.add_argument("--tokenizer")
    p.add_argument("--text", required=True)
    p.add_argument("--noise", required=True)
    p.add_argument("--latents", type=int, required=True)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--cfg", type=float, default=1.5)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--out", required=True)
    args = parser.parse_args()
    _import_upstream(args.repo)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    handlers = {"save-tiny": cmd_save_tiny, "save-real": cmd_save_real, "layout": cmd_layout, "generate": cmd_generate}
    result = handlers[args.command](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
