"""DPM-Solver++ (SDE, 2nd order, cosine schedule) against an independent float64 derivation, determinism given
the noise, and independence of batch rows."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from s2s_tts.vibevoice.sampler import TorchNoise, make_schedule, sample_latents


class ToyHead(nn.Module):
    """A stand-in for the diffusion head: a fixed smooth function of (x, t, condition)."""

    def __init__(self, dim: int = 8, hidden: int = 6) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.wx = torch.randn(dim, dim, generator=g) * 0.3
        self.wc = torch.randn(hidden, dim, generator=g) * 0.3

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.wx + condition @ self.wc) * (t[:, None] / 1000.0) + 0.1 * x


def reference(head: ToyHead, pos: np.ndarray, neg: np.ndarray, cfg: float, noise: np.ndarray, steps: int) -> np.ndarray:
    """sde-dpmsolver++ written from the DPM-Solver++ paper's update rules in float64."""
    n_train = 1000
    abar = [math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 for t in np.arange(n_train + 1) / n_train]
    betas = np.array([min(1 - abar[i + 1] / abar[i], 0.999) for i in range(n_train)])
    ac = np.cumprod(1 - betas)
    ts = np.linspace(0, n_train - 1, steps + 1).round()[::-1][:-1].astype(int)
    sig = np.append(np.sqrt((1 - ac[ts]) / ac[ts]), 0.0)
    alpha = 1 / np.sqrt(sig**2 + 1)
    sigma = sig * alpha
    with np.errstate(divide="ignore"):
        lam = np.log(alpha) - np.log(sigma)
    x = noise[:, 0]
    prev = None
    for i, t in enumerate(ts):
        tt = torch.full((x.shape[0],), float(t), dtype=torch.float64)
        c = head(torch.from_numpy(x).float(), tt.float(), torch.from_numpy(pos).float()).double().numpy()
        u = head(torch.from_numpy(x).float(), tt.float(), torch.from_numpy(neg).float()).double().numpy()
        v = u + cfg * (c - u)
        x0 = alpha[i] * x - sigma[i] * v
        h = lam[i + 1] - lam[i]
        first = i == 0 or i == steps - 1
        nxt = sigma[i + 1] / sigma[i] * math.exp(-h) * x + alpha[i + 1] * (1 - math.exp(-2 * h)) * x0
        if not first:
            r0 = (lam[i] - lam[i - 1]) / h
            nxt = nxt + 0.5 * alpha[i + 1] * (1 - math.exp(-2 * h)) * (x0 - prev) / r0
        x = nxt + sigma[i + 1] * math.sqrt(1 - math.exp(-2 * h)) * noise[:, i + 1]
        prev = x0
    return x


def test_demo_timesteps() -> None:
    assert make_schedule(5).timesteps == (999, 799, 599, 400, 200)
    assert len(make_schedule(20).timesteps) == 20
    last = make_schedule(5).steps[-1]
    assert (last.a, last.b, last.c) == (0.0, 1.0, 0.0)  # the last step lands on the data prediction


def test_matches_float64_derivation() -> None:
    head = ToyHead()
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    for steps in (1, 2, 5, 10):
        noise = torch.randn(3, steps + 1, 8, generator=g)
        got = sample_latents(head, pos, neg, 1.5, noise, make_schedule(steps))
        want = reference(head, pos.double().numpy(), neg.double().numpy(), 1.5, noise.double().numpy(), steps)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


def test_deterministic_and_rows_independent() -> None:
    head = ToyHead()
    g = torch.Generator().manual_seed(2)
    pos, neg = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    noise = torch.randn(4, 6, 8, generator=g)
    sched = make_schedule(5)
    a = sample_latents(head, pos, neg, 1.5, noise, sched)
    assert torch.equal(a, sample_latents(head, pos, neg, 1.5, noise, sched))
    for i in range(4):
        alone = sample_latents(head, pos[i : i + 1], neg[i : i + 1], 1.5, noise[i : i + 1], sched)
        torch.testing.assert_close(alone, a[i : i + 1], rtol=1e-6, atol=1e-6)
    per_row = torch.full((4, 1), 1.5)
    torch.testing.assert_close(sample_latents(head, pos, neg, per_row, noise, sched), a)


def test_torch_noise_is_seeded() -> None:
    a = TorchNoise(7).draw(["s1"], [0], 5, 4, torch.device("cpu"))
    b = TorchNoise(7).draw(["s9"], [3], 5, 4, torch.device("cpu"))
    assert a.shape == (1, 6, 4) and torch.equal(a, b)


def test_upstream_order_noise_draws_as_upstream_does() -> None:
    from s2s_tts.vibevoice.sampler import UpstreamOrderNoise

    got = UpstreamOrderNoise(5).draw(["s1"], [0], 3, 4, torch.device("cpu"))
    g = torch.Generator().manual_seed(5)
    want = torch.stack([torch.randn(2, 4, generator=g)[0] for _ in range(4)])
    assert torch.equal(got[0], want)
