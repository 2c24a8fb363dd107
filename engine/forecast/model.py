"""The small LSTM: a window of feature rows -> per horizon a mean and two band half-widths, in vol units.

Targets are cumulative log returns divided by vol * sqrt(h) (``engine.forecast.features``). For each horizon
the network gives the mean and the half-widths of the 80 % and 95 % bands around "no change",
learned directly as quantiles of |target| with the pinball loss: no Gaussian and no sqrt(h)
assumption, and the loss is the interval score's own (for a band [-w, w] at level 1 - alpha,
IS = (2 / alpha) * pinball_{1 - alpha}(|y|, w) + 2|y|), so a lower loss is a sharper band for
the same misses.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

# torch warns at import when numpy is absent; the project does not use numpy, so it is noise.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch
from torch import nn

Z80 = 1.2815515655446004  # standard normal quantiles: where the half-widths start
Z95 = 1.959963984540054
LEVELS = (0.8, 0.95)  # the bands' nominal coverage; quantiles of |y| at these levels


@dataclass(frozen=True)
class ModelConfig:
    n_features: int = 12  # feature row width (engine.forecast.features.N_FEATURES)
    n_horizons: int = 4  # one direct output per horizon (no recursive roll-outs)
    hidden: int = 48  # LSTM width: small on purpose, a step a minute must stay cheap
    layers: int = 1
    min_log_width: float = -3.0  # clamp so a flat market cannot drive a width to ~0
    max_log_width: float = 3.0


class ForecastNet(nn.Module):
    """LSTM over the input window, then one linear head: mean and log half-widths per horizon."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.n_features, cfg.hidden, num_layers=cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, 3 * cfg.n_horizons)
        # Start at "no change" with Gaussian half-widths: untrained, the network's band is the
        # square-root-of-time volatility band, and it moves only where the data says so.
        h = cfg.n_horizons
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            self.head.bias[h : 2 * h] = math.log(Z80)
            self.head.bias[2 * h :] = math.log(math.expm1(math.log(Z95 / Z80)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log half-widths): (B, H) and (B, H, 2), the last axis the 80 % and 95 % bands."""
        out, _ = self.lstm(x)  # (B, T, hidden)
        last = out[:, -1, :]  # (B, hidden)
        mu, lw80, gap = self.head(last).chunk(3, dim=-1)  # (B, H) each
        # The 95 % half-width is the 80 % one times more than 1: the bands never cross.
        lw95 = lw80 + nn.functional.softplus(gap)
        log_w = torch.stack((lw80, lw95), dim=-1)  # (B, H, 2)
        return mu, log_w.clamp(self.cfg.min_log_width, self.cfg.max_log_width)


def forecast_loss(
    mu: torch.Tensor,
    log_w: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    mean_penalty: float = 0.0,
) -> torch.Tensor:
    """Masked training loss: squared error of the mean (plus a ridge towards "no change") and the
    pinball loss of each half-width as a quantile of |y| (the interval score, see the module doc).

    ``y`` holds NaN where a label has not matured; ``mask`` marks the finite ones.
    """
    m = mask.to(mu.dtype)
    y = torch.where(mask, y, torch.zeros_like(y))
    n = m.sum().clamp_min(1.0)
    sq = 0.5 * (y - mu) ** 2
    ay = y.abs().unsqueeze(-1)  # (B, H, 1)
    w = log_w.exp()  # (B, H, 2)
    tau = torch.tensor(LEVELS, dtype=w.dtype)
    d = ay - w
    pin = torch.maximum(tau * d, (tau - 1.0) * d).sum(-1)  # (B, H)
    loss = ((sq + pin) * m).sum() / n
    if mean_penalty > 0:
        loss = loss + mean_penalty * (mu**2).mean()
    return loss
