"""The LSTM's shapes, its clamped and ordered half-widths, and the masked loss."""

from __future__ import annotations

import math

import torch

from engine.forecast.model import Z80, Z95, ForecastNet, ModelConfig, forecast_loss

torch.set_num_threads(1)


def test_shapes_clamp_and_ordered_bands() -> None:
    cfg = ModelConfig(n_features=12, n_horizons=4, hidden=16)
    net = ForecastNet(cfg)
    x = torch.randn(5, 30, 12)  # (B, T, F)
    mu, log_w = net(x)
    assert mu.shape == (5, 4) and log_w.shape == (5, 4, 2)
    big = net(x * 1e6)[1]
    assert bool((big <= cfg.max_log_width).all()) and bool((big >= cfg.min_log_width).all())
    assert bool((log_w[..., 1] >= log_w[..., 0]).all())  # the 95 % band holds the 80 % one


def test_untrained_model_starts_at_no_change_with_gaussian_widths() -> None:
    torch.manual_seed(0)
    net = ForecastNet(ModelConfig())
    with torch.no_grad():
        mu, log_w = net(torch.randn(64, 30, 12))
    assert float(mu.abs().max()) < 0.5
    w = log_w.exp()
    assert abs(float(w[..., 0].mean()) - Z80) < 0.2 and abs(float(w[..., 1].mean()) - Z95) < 0.3


def test_masked_targets_do_not_count() -> None:
    mu = torch.zeros(2, 3, requires_grad=True)
    lw = torch.zeros(2, 3, 2)
    y = torch.tensor([[1.0, float("nan"), 2.0], [0.5, 9.0, float("nan")]])
    mask = torch.isfinite(y)
    a = forecast_loss(mu, lw, y, mask)
    y3 = torch.where(mask, y, torch.full_like(y, 123.0))
    b = forecast_loss(mu, lw, y3, mask)
    assert torch.isfinite(a) and torch.allclose(a, b)
    a.backward()
    assert mu.grad is not None and float(mu.grad[0, 1]) == 0.0 and float(mu.grad[1, 2]) == 0.0


def test_loss_prefers_the_true_mean_and_the_true_quantiles_of_the_size() -> None:
    torch.manual_seed(0)
    y = torch.randn(20000, 1)
    mask = torch.ones_like(y, dtype=torch.bool)

    def loss(m: float, w80: float, w95: float) -> float:
        mu = torch.full_like(y, m)
        lw = torch.tensor([math.log(w80), math.log(w95)]).expand(20000, 1, 2)
        return float(forecast_loss(mu, lw, y, mask))

    best = loss(0.0, Z80, Z95)  # quantiles of |N(0, 1)| at 80 % and 95 %
    assert best < loss(0.5, Z80, Z95)
    for w80, w95 in ((1.0, Z95), (1.6, Z95), (Z80, 1.6), (Z80, 2.4)):
        assert best < loss(0.0, w80, w95)
