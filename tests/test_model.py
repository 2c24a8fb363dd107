"""The LSTM's shapes, its clamped spread, and the masked beta-NLL."""

from __future__ import annotations

import torch

from engine.model import ForecastNet, ModelConfig, beta_nll

torch.set_num_threads(1)


def test_shapes_and_clamp() -> None:
    cfg = ModelConfig(n_features=8, n_horizons=4, hidden=16)
    net = ForecastNet(cfg)
    x = torch.randn(5, 30, 8)  # (B, T, F)
    mu, log_sigma = net(x)
    assert mu.shape == (5, 4) and log_sigma.shape == (5, 4)
    big = net(x * 1e6)[1]
    assert bool((big <= cfg.max_log_sigma).all()) and bool((big >= cfg.min_log_sigma).all())


def test_untrained_model_starts_near_no_change() -> None:
    torch.manual_seed(0)
    net = ForecastNet(ModelConfig())
    with torch.no_grad():
        mu, log_sigma = net(torch.randn(64, 30, 8))
    assert float(mu.abs().max()) < 0.5
    assert float(log_sigma.abs().max()) < 0.5


def test_masked_targets_do_not_count() -> None:
    mu = torch.zeros(2, 3, requires_grad=True)
    ls = torch.zeros(2, 3)
    y = torch.tensor([[1.0, float("nan"), 2.0], [0.5, 9.0, float("nan")]])
    mask = torch.isfinite(y)
    a = beta_nll(mu, ls, y, mask, beta=0.5)
    y2 = y.clone()
    y2[1, 1] = 9.0
    mask2 = mask.clone()
    y3 = torch.where(mask2, y2, torch.full_like(y2, 123.0))
    b = beta_nll(mu, ls, y3, mask2, beta=0.5)
    assert torch.isfinite(a) and torch.allclose(a, b)
    a.backward()
    assert mu.grad is not None and float(mu.grad[0, 1]) == 0.0 and float(mu.grad[1, 2]) == 0.0


def test_nll_prefers_the_true_mean_and_spread() -> None:
    torch.manual_seed(0)
    y = torch.randn(4000, 1) * 2.0 + 1.0
    mask = torch.ones_like(y, dtype=torch.bool)

    def loss(m: float, s: float) -> float:
        mu = torch.full_like(y, m)
        ls = torch.full_like(y, s).log()
        return float(beta_nll(mu, ls, y, mask, beta=0.0))

    assert loss(1.0, 2.0) < loss(0.0, 2.0)
    assert loss(1.0, 2.0) < loss(1.0, 1.0)
    assert loss(1.0, 2.0) < loss(1.0, 4.0)
