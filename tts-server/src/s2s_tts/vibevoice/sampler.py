"""DPM-Solver++ as upstream's demo configures it: the SDE variant (`sde-dpmsolver++`), second order, midpoint,
the `squaredcos_cap_v2` (cosine) beta schedule over 1,000 training steps, `linspace` timestep spacing, a first-order
last step to sigma 0 (`final_sigmas_type` zero, `lower_order_final`), and the head's prediction type from the config
(v-prediction for the published model). Batched over rows; classifier-free guidance against the negative condition
is one 2B-row head call per step. Deterministic given the noise, which comes from one overridable place
(`NoiseSource`): index 0 is the starting sample, index k+1 the SDE noise of step k, as upstream draws them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch
from torch import nn


class NoiseSource(Protocol):
    def draw(
        self, streams: Sequence[str], frames: Sequence[int], steps: int, dim: int, device: torch.device
    ) -> torch.Tensor:
        """[len(streams), steps + 1, dim] float32 standard normal noise for these streams' frames."""
        ...


class TorchNoise:
    """The default: one batched draw from one generator (no per-stream work); seeded for reproducible runs."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self._gens: dict[str, torch.Generator] = {}

    def _gen(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            g = torch.Generator(device=device)
            g.manual_seed(self._seed if self._seed is not None else torch.seed())
            self._gens[key] = g
        return self._gens[key]

    def draw(
        self, streams: Sequence[str], frames: Sequence[int], steps: int, dim: int, device: torch.device
    ) -> torch.Tensor:
        return torch.randn((len(streams), steps + 1, dim), generator=self._gen(device), device=device)


class UpstreamOrderNoise:
    """Noise drawn in the order and shapes upstream's `sample_speech_tokens` draws it for one stream (batch 1):
    per latent a [2, dim] starting sample, then a [2, dim] SDE noise per solver step, all from one CPU generator;
    row 0 is the positive (guided) row, the one that becomes the latent. Seed it as the upstream run seeds torch
    and both sides see the same noise (the parity test's hook)."""

    def __init__(self, seed: int) -> None:
        self._gen = torch.Generator().manual_seed(seed)

    def draw(
        self, streams: Sequence[str], frames: Sequence[int], steps: int, dim: int, device: torch.device
    ) -> torch.Tensor:
        rows = []
        for _ in streams:
            rows.append(torch.stack([torch.randn(2, dim, generator=self._gen)[0] for _ in range(steps + 1)]))
        return torch.stack(rows).to(device)


def _cosine_betas(num_steps: int, max_beta: float = 0.999) -> torch.Tensor:
    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)]
    return torch.tensor(betas, dtype=torch.float32)


@dataclass(frozen=True)
class StepCoefficients:
    """One solver step: x_next = a * x + b * D0 (+ b/2 * D1 at second order) + c * noise."""

    a: float
    b: float
    c: float
    second_order: bool
    r0_inv: float  # 1 / r0 for D1 = (m0 - m1) / r0
    alpha_s: float  # for the model-output conversion at this step's sigma
    sigma_s: float


@dataclass(frozen=True)
class Schedule:
    timesteps: tuple[int, ...]
    steps: tuple[StepCoefficients, ...]


def _alpha_sigma(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    alpha = 1 / ((sigma**2 + 1) ** 0.5)
    return alpha, sigma * alpha


@lru_cache(maxsize=32)
def make_schedule(num_inference_steps: int, num_train_steps: int = 1000, beta_schedule: str = "cosine") -> Schedule:
    if beta_schedule not in ("cosine", "squaredcos_cap_v2"):
        raise ValueError(f"beta schedule {beta_schedule!r} is not supported (the demo uses squaredcos_cap_v2)")
    if num_inference_steps < 1:
        raise ValueError("at least one diffusion step")
    alphas_cumprod = torch.cumprod(1.0 - _cosine_betas(num_train_steps), dim=0)
    # float32 arithmetic throughout, in the order upstream's scheduler does it, so the coefficients agree bit for bit
    timesteps = np.linspace(0, num_train_steps - 1, num_inference_steps + 1).round()[::-1][:-1].copy().astype(np.int64)
    all_sigmas = (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).numpy()
    sigmas_np = np.interp(timesteps, np.arange(0, len(all_sigmas)), all_sigmas)
    sigmas = torch.from_numpy(np.concatenate([sigmas_np, [0.0]]).astype(np.float32))
    lambdas = []
    for s in sigmas:
        alpha, sig = _alpha_sigma(s)
        lambdas.append(torch.log(alpha) - torch.log(sig))
    steps: list[StepCoefficients] = []
    n = len(timesteps)
    for i in range(n):
        alpha_t, sigma_t = _alpha_sigma(sigmas[i + 1])
        alpha_s, sigma_s = _alpha_sigma(sigmas[i])
        h = lambdas[i + 1] - lambdas[i]
        a = sigma_t / sigma_s * torch.exp(-h)
        b = alpha_t * (1 - torch.exp(-2.0 * h))
        c = sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h))
        # solver order 2: first order at the first step (no history) and at the last (final sigma 0)
        second = 0 < i < n - 1
        r0_inv = float(1.0 / ((lambdas[i] - lambdas[i - 1]) / h)) if second else 0.0
        steps.append(
            StepCoefficients(
                a=float(a),
                b=float(b),
                c=float(c),
                second_order=second,
                r0_inv=r0_inv,
                alpha_s=float(alpha_s),
                sigma_s=float(sigma_s),
            )
        )
    return Schedule(timesteps=tuple(int(t) for t in timesteps), steps=tuple(steps))


def sample_latents(
    head: nn.Module,
    pos_condition: torch.Tensor,
    neg_condition: torch.Tensor,
    cfg_scale: float | torch.Tensor,
    noise: torch.Tensor,
    schedule: Schedule,
    prediction_type: str = "v_prediction",
) -> torch.Tensor:
    """B latents [B, latent] for B positive conditions against their negatives ([B, H] each), guided by
    `cfg_scale` (a number, or [B, 1] float32 per row). `noise` is [B, steps + 1, latent] float32."""
    dtype = pos_condition.dtype
    rows = pos_condition.shape[0]
    condition = torch.cat([pos_condition, neg_condition], dim=0)
    x = noise[:, 0].to(dtype)
    prev_x0: torch.Tensor | None = None
    for k, (t, co) in enumerate(zip(schedule.timesteps, schedule.steps, strict=True)):
        both = torch.cat([x, x], dim=0)
        timestep = torch.full((2 * rows,), float(t), device=x.device, dtype=dtype)
        out = head(both, timestep, condition=condition)
        cond_out, uncond_out = out[:rows], out[rows:]
        if isinstance(cfg_scale, torch.Tensor):
            guided = (uncond_out + cfg_scale * (cond_out - uncond_out)).to(dtype)
        else:
            guided = uncond_out + cfg_scale * (cond_out - uncond_out)
        # the solver works on the data prediction x0 (DPM-Solver++), in the model's dtype as upstream does
        if prediction_type == "v_prediction":
            x0 = co.alpha_s * x - co.sigma_s * guided
        else:
            x0 = (x - co.sigma_s * guided) / co.alpha_s
        # terms added in upstream's order and dtypes (x0 terms in the model's dtype, the sum in float32)
        nxt = co.a * x.float() + co.b * x0
        if co.second_order and prev_x0 is not None:
            nxt = nxt + (0.5 * co.b) * (co.r0_inv * (x0 - prev_x0))
        x = (nxt + co.c * noise[:, k + 1]).to(dtype)
        prev_x0 = x0
    return x
