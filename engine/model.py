"""The small LSTM: a window of feature rows -> a Gaussian (mean, log sigma) per horizon, in vol units."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

# torch warns at import when numpy is absent; the project does not use numpy, so it is noise.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from torch import nn  # noqa: E402


@dataclass(frozen=True)
class ModelConfig:
    n_features: int = 8  # feature row width (engine.features.N_FEATURES)
    n_horizons: int = 4  # one direct output per horizon (no recursive roll-outs)
    hidden: int = 48  # LSTM width: small on purpose, a step a minute must stay cheap
    layers: int = 1
    min_log_sigma: float = -3.0  # clamp so the NLL cannot run away on a flat market
    max_log_sigma: float = 3.0


class ForecastNet(nn.Module):
    """LSTM over the input window, then one linear head giving mean and log sigma per horizon."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.n_features, cfg.hidden, num_layers=cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, 2 * cfg.n_horizons)
        # Start near "no change, unit spread": an untrained model then behaves like persistence.
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, _ = self.lstm(x)  # (B, T, hidden)
        last = out[:, -1, :]  # (B, hidden)
        y = self.head(last)  # (B, 2H)
        mu, log_sigma = y.chunk(2, dim=-1)  # (B, H) each
        log_sigma = log_sigma.clamp(self.cfg.min_log_sigma, self.cfg.max_log_sigma)
        return mu, log_sigma


def beta_nll(
    mu: torch.Tensor, log_sigma: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """Masked beta-NLL (Seitzer et al. 2022): Gaussian NLL weighted by var**beta (detached).

    beta=0 is the plain NLL; beta>0 keeps the mean learning where the model believes noise is high.
    """
    var = torch.exp(2 * log_sigma)
    y = torch.where(mask, y, torch.zeros_like(y))
    nll = 0.5 * (2 * log_sigma + (y - mu) ** 2 / var)
    if beta > 0:
        nll = nll * var.detach() ** beta
    m = mask.to(nll.dtype)
    return (nll * m).sum() / m.sum().clamp_min(1.0)
