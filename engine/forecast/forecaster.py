"""Per-coin online forecaster: multi-horizon log-return forecasts with calibrated bands, learning live.

Per observed bar (``observe``, cheap, one forward pass):
  1. matured predictions are scored (model, persistence, EWMA drift) by ``engine.forecast.evaluate``; the
     band trackers, the band choice and the skill factor update on them; the samples get their labels and enter
     the replay buffer;
  2. the bar becomes a feature row (``engine.forecast.features``), and a forecast is made from the last
     ``window`` rows with the EMA copy of the weights.
``train`` then does a few gradient steps on batches mixing recent and replayed samples.

Honesty rules: inputs, scales, calibration and the skill factor use only data from before the
forecast; filled (backfilled) bars are context, never a target nor a scored label.

Served mean = k_h * raw, where raw is the network's mean and k_h in [0, 1] is the candidate factor
with the lowest past error relative to "no change" (follow the leader over matured predictions,
k=0 until a k > 0 has proved better by a margin).

Bands, per horizon and level, three candidates issued side by side and scored when they mature:
  - the network's band: mean +- q * w * vol * sqrt(h), w the network's half-width for that
    horizon and level, learned as a quantile of |scaled return| (engine.forecast.model): the network learns
    per-horizon departures from the square-root rule and the Gaussian shape;
  - the simple band (engine.forecast.evaluate.VolBand): "no change" +- q * sqrt(h * variance), the EWMA
    variance reverting towards its 2-hour level over the horizon;
  - their blend (the mean of the two bands' ends).
Each q is stepped by online quantile tracking (q += eta * (miss - alpha), eta = 0.01 / sqrt(h)),
so coverage holds when volatility shifts; the 95 % ones start from the fat-tailed prior measured on
the bundled demo data (``q95_start``), ewma-band's from the Gaussian point. The simple band is
served until the network's band or the blend has proved a lower interval score on past matured
labels, by a margin and two standard errors (``_BandChoice``); the metrics say which is served and
the ratio behind the choice.
``ewma-band`` (engine.forecast.evaluate.EwmaBand, the issue's baseline: no reversion) is issued and scored
beside them, never served.

Shared mode (``LstmFactory(shared=True)``): the per-coin Forecasters share one
``Learner`` (network, EMA, optimiser, replay buffer, divergence guard); features, calibration,
skill and scores stay per coin.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import io
import logging
import math
import random
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

# torch warns at import when numpy is absent; the project does not use numpy, so it is noise.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch

from engine.atomic import write_atomic
from engine.errors import ModelConfigChanged, ModelError
from engine.events import Bar, ForecastEvent, MetricsEvent, TrainEvent
from engine.forecast.evaluate import (
    LEVELS,
    Z95,
    Band,
    Evaluator,
    EwmaBand,
    QuantileTracker,
    VolBand,
    interval_score,
    q95_start,
)
from engine.forecast.features import N_FEATURES, VOL_FLOOR, Normaliser, scaled_target
from engine.forecast.model import ForecastNet, ModelConfig, forecast_loss

_frozen = False


def _freeze_long_lived() -> None:
    """Hide what torch loaded from the garbage collector, once (after the first optimiser).

    torch and the modules it imports lazily on the first optimiser (torch._dynamo, sympy) leave
    ~250k objects that live as long as the process. A full collection walks them all (80-200 ms,
    bench/bench_ui.py) on whichever thread triggers it, often the UI's, and key presses wait.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 2  # 2: quantile-tracked bands, ewma-band and the band choice (was conformal)
SKILL_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class ForecastConfig:
    horizons: tuple[int, ...] = (1, 5, 15, 60)  # in bars (minutes with the default 1-minute bar)
    bar_seconds: int = 60  # the bar grid; the backtest's --bar 5m/1h changes it
    window: int = 30  # input rows per forecast
    hidden: int = 48  # LSTM width
    steps_per_minute: int = 1  # gradient steps per new bar (live and backtest alike)
    # One step of 64 per bar sees as many samples as two of 32 did, and a wider, batched step keeps
    # the core busy with matrix work instead of per-op overhead (bench/bench_model.py).
    batch: int = 64
    lr: float = 1e-4  # constant Adam learning rate: slow, the labels are mostly noise
    grad_clip: float = 1.0
    mean_penalty: float = 1.0  # ridge on the predicted mean (vol units): "no change" unless learned
    ema_decay: float = 0.99  # serving copy of the weights
    recent_size: int = 256  # replay: ring of the newest samples
    reservoir_size: int = 2048  # replay: uniform reservoir of everything older
    recent_share: float = 0.5  # share of each batch drawn from the ring
    min_samples: int = 32  # no training before this many labelled samples
    vol_halflife: float = 30.0  # bars, EWMA volatility used to scale inputs and targets
    band_eta: float = 0.01  # step of the network band's calibration at h=1 (divided by sqrt(h))
    band_halflife: float = 3000.0  # matured labels, memory of the band choice's scores
    band_min_n: int = 50  # independent labels (matured / h) before the network's band may be served
    band_margin: float = 0.01  # the network's band (or the blend) must beat ewma-band by this share
    skill_halflife: float = 2000.0  # matured predictions, memory of the skill factor's scores
    skill_min_n: int = 100  # independent labels (matured / h) before any k > 0 may be served
    skill_margin: float = 0.003  # k > 0 must beat "no change" by this relative margin
    spike_factor: float = 8.0  # divergence guard: loss above ewma + factor * (spread + 0.5)
    guard_every: int = 50  # steps between snapshots of the last good state
    cooldown_steps: int = 200  # steps at lowered learning rate after a rollback
    cooldown_lr_factor: float = 0.1


@dataclass
class _Sample:
    x: torch.Tensor  # (window, N_FEATURES)
    y: torch.Tensor  # (H,) scaled targets, NaN until the horizon matures
    in_buffer: bool = False


@dataclass
class _Pending:
    """A forecast waiting for its labels."""

    price: float
    filled: bool
    scale: tuple[float, ...]
    raw: tuple[float, ...]
    mean: tuple[float, ...]
    drift: tuple[float, ...]
    lo80: tuple[float, ...]
    hi80: tuple[float, ...]
    lo95: tuple[float, ...]
    hi95: tuple[float, ...]
    network: tuple[Band, ...]  # the network's band per horizon
    volband: tuple[Band, ...]  # the reverting volatility band (served by default)
    simple: tuple[Band, ...]  # ewma-band per horizon (the baseline)
    sample: _Sample | None


class ReplayBuffer:
    """Recent ring plus a reservoir (Algorithm R) of older samples; sampling is seeded."""

    def __init__(self, recent: int, reservoir: int, rng: random.Random) -> None:
        self.recent: deque[_Sample] = deque(maxlen=recent)
        self.reservoir: list[_Sample] = []
        self.capacity = reservoir
        self.seen = 0
        self.rng = rng

    def __len__(self) -> int:
        return self.seen

    def add(self, s: _Sample) -> None:
        self.recent.append(s)
        self.seen += 1
        if len(self.reservoir) < self.capacity:
            self.reservoir.append(s)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.capacity:
                self.reservoir[j] = s

    def batch(self, size: int, recent_share: float) -> list[_Sample]:
        n_recent = max(1, round(size * recent_share)) if self.reservoir else size
        rec = list(self.recent)
        out = [rec[self.rng.randrange(len(rec))] for _ in range(n_recent)]
        out += [
            self.reservoir[self.rng.randrange(len(self.reservoir))] for _ in range(size - n_recent)
        ]
        return out


class Learner:
    """Network, EMA copy, optimiser, replay buffer and divergence guard (shareable between coins)."""

    def __init__(self, config: ForecastConfig, seed: int = 0) -> None:
        self.config = config
        self.model_config = ModelConfig(
            n_features=N_FEATURES, n_horizons=len(config.horizons), hidden=config.hidden
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = ForecastNet(self.model_config)
        self.ema = copy.deepcopy(self.model)
        for p in self.ema.parameters():
            p.requires_grad_(False)
        # fused: one kernel for the whole update instead of a dozen small ops per parameter.
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=True)
        # As plain tensors: the foreach kernels take list[Tensor] (a list is invariant in its type).
        self._params: list[torch.Tensor] = list(self.model.parameters())
        self._ema_params: list[torch.Tensor] = list(self.ema.parameters())
        _freeze_long_lived()
        self.rng = random.Random(seed)
        self.buffer = ReplayBuffer(config.recent_size, config.reservoir_size, self.rng)
        self.step = 0
        self.losses: deque[float] = deque(maxlen=120)
        self.loss_ewma: float | None = None
        self.loss_dev = 0.0
        self.cooldown = 0
        self.rollbacks = 0
        self.last_step_ms: float | None = None
        self.message = ""
        # observe() may run on the engine thread while train() runs on a trainer thread; one
        # lock per learner (shared mode: per model) keeps the weights and the buffer consistent.
        self.lock = threading.RLock()
        self._good: dict[str, Any] = self._snapshot()

    # -- serving ---------------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[list[float], list[list[float]]]:
        """Mean and the (80 %, 95 %) half-widths per horizon, vol units, from the EMA weights.

        ``x`` is (window, F).
        """
        with self.lock:
            mu, log_w = self.ema(x.unsqueeze(0))  # (1, H), (1, H, 2)
        return mu[0].tolist(), log_w[0].exp().tolist()

    # -- training --------------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        c = self.config
        return c.lr * (c.cooldown_lr_factor if self.cooldown > 0 else 1.0)

    def _snapshot(self) -> dict[str, Any]:
        return {
            "model": copy.deepcopy(self.model.state_dict()),
            "ema": copy.deepcopy(self.ema.state_dict()),
            "opt": copy.deepcopy(self.opt.state_dict()),
            "step": self.step,
        }

    def _finite_weights(self) -> bool:
        # One reduction over all weights: a NaN or inf anywhere makes its norm non-finite.
        norms = torch._foreach_norm(self._params)
        return bool(torch.isfinite(torch.stack(norms)).all())

    def _rollback(self, why: str) -> None:
        good = self._good
        self.model.load_state_dict(good["model"])
        self.ema.load_state_dict(good["ema"])
        self.opt.load_state_dict(good["opt"])
        self.cooldown = self.config.cooldown_steps
        self.rollbacks += 1
        self.message = (
            f"{why} at step {self.step}: rolled back to step {good['step']}, "
            f"learning rate lowered to {self.lr:g} for {self.cooldown} steps"
        )
        log.warning("divergence guard: %s", self.message)

    def train_steps(self, steps: int) -> tuple[float, bool] | None:
        """Run ``steps`` steps; returns (mean loss, rolled_back) or None with nothing to learn."""
        with self.lock:
            return self._train_steps(steps)

    def _train_steps(self, steps: int) -> tuple[float, bool] | None:
        c = self.config
        if len(self.buffer) < c.min_samples:
            return None
        t0 = time.perf_counter()
        total, done, rolled = 0.0, 0, False
        for _ in range(steps):
            batch = self.buffer.batch(c.batch, c.recent_share)
            x = torch.stack([s.x for s in batch])  # (B, T, F)
            y = torch.stack([s.y for s in batch])  # (B, H)
            mask = torch.isfinite(y)
            for g in self.opt.param_groups:
                g["lr"] = self.lr
            mu, log_w = self.model(x)
            loss = forecast_loss(mu, log_w, y, mask, c.mean_penalty)
            lv = float(loss.detach())
            why = ""
            if not math.isfinite(lv):
                why = "loss is not finite"
            elif (
                self.loss_ewma is not None
                and self.step > c.guard_every
                and lv > self.loss_ewma + c.spike_factor * (self.loss_dev + 0.5)
            ):
                why = f"loss spike ({lv:.3g} vs {self.loss_ewma:.3g})"
            if not why:
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(self._params, c.grad_clip, foreach=True)
                if not math.isfinite(float(gnorm)):
                    why = "gradients are not finite"
                else:
                    self.opt.step()
                    if not self._finite_weights():
                        why = "weights are not finite"
            if why:
                self._rollback(why)
                rolled = True
                break
            self.step += 1
            done += 1
            total += lv
            if self.cooldown > 0:
                self.cooldown -= 1
                if self.cooldown == 0:
                    self.message = ""
            with torch.no_grad():
                torch._foreach_lerp_(self._ema_params, self._params, 1.0 - c.ema_decay)
            if self.loss_ewma is None:
                self.loss_ewma = lv
            else:
                self.loss_dev = 0.98 * self.loss_dev + 0.02 * abs(lv - self.loss_ewma)
                self.loss_ewma = 0.98 * self.loss_ewma + 0.02 * lv
            self.losses.append(lv)
            if self.step % c.guard_every == 0:
                self._good = self._snapshot()
        self.last_step_ms = (time.perf_counter() - t0) * 1000.0 / max(done + rolled, 1)
        mean_loss = total / done if done else float("nan")
        return mean_loss, rolled

    # -- checkpoint ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "loss_ewma": self.loss_ewma,
            "loss_dev": self.loss_dev,
            "cooldown": self.cooldown,
            "losses": list(self.losses),
        }

    def load_state(self, st: dict[str, Any]) -> None:
        self.model.load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["optimizer"])
        self.step = int(st["step"])
        self.loss_ewma = None if st["loss_ewma"] is None else float(st["loss_ewma"])
        self.loss_dev = float(st["loss_dev"])
        self.cooldown = int(st["cooldown"])
        self.losses.clear()
        self.losses.extend(float(v) for v in st["losses"])
        if not self._finite_weights():
            raise ModelError("checkpoint holds non-finite weights")
        self._good = self._snapshot()


def _beats(s1: float, s2: float, w: float, n_eff: float, n_se: float) -> bool:
    """True when a decayed mean loss difference is below zero by ``n_se`` standard errors."""
    mean = s1 / w
    var = max(s2 / w - mean * mean, 0.0)
    return mean + n_se * math.sqrt(var / n_eff) < 0.0


@dataclass
class _Skill:
    """Which shrink factor k to serve: follow the leader over matured predictions, past data only.

    For each candidate k (k > 1 undoes the ridge on the network's mean) it keeps decayed sums of
    the loss difference against "no change" (absolute and squared error). A k > 0 is served only
    when its squared error beats k = 0 by ``margin`` and by 2.5 standard errors and its absolute
    error is lower too (by one standard error), counting overlapping h-step labels as n/h
    independent ones, and only once ``min_n`` such independent labels exist.
    """

    sums: list[list[float]] = field(default_factory=lambda: [[0.0] * 4 for _ in SKILL_GRID])
    base: list[float] = field(default_factory=lambda: [0.0, 0.0])  # decayed sum |y|, y^2
    w: float = 0.0  # decayed weight sum
    w2: float = 0.0  # decayed sum of squared weights
    n: int = 0
    k: float = 0.0

    def update(
        self, raw: float, y: float, horizon: int, decay: float, min_n: int, margin: float
    ) -> None:
        self.w = decay * self.w + 1.0
        self.w2 = decay * decay * self.w2 + 1.0
        ay, sy = abs(y), y * y
        self.base[0] = decay * self.base[0] + ay
        self.base[1] = decay * self.base[1] + sy
        for i, k in enumerate(SKILL_GRID):
            e = y - k * raw
            da, ds = abs(e) - ay, e * e - sy
            acc = self.sums[i]
            acc[0] = decay * acc[0] + da
            acc[1] = decay * acc[1] + da * da
            acc[2] = decay * acc[2] + ds
            acc[3] = decay * acc[3] + ds * ds
        self.n += 1
        self.k = self._choose(horizon, min_n, margin)

    def _choose(self, horizon: int, min_n: int, margin: float) -> float:
        n_eff = (self.w * self.w / self.w2) / horizon
        if n_eff < min_n or self.base[0] <= 0 or self.base[1] <= 0:
            return 0.0
        best_k, best = 0.0, 1.0 - margin
        for i, k in enumerate(SKILL_GRID[1:], 1):
            a1, a2, s1, s2 = self.sums[i]
            # Squared error must improve clearly (2.5 standard errors); absolute error, which a
            # point mass of unchanged minutes makes hard to beat, must improve at 1 standard error.
            if not (_beats(a1, a2, self.w, n_eff, 1.0) and _beats(s1, s2, self.w, n_eff, 2.5)):
                continue
            rel_mae, rel_mse = 1.0 + a1 / self.base[0], 1.0 + s1 / self.base[1]
            if rel_mse < best and rel_mae < 1.0:
                best_k, best = k, rel_mse
        return best_k

    def state(self) -> list[float]:
        flat = [v for acc in self.sums for v in acc]
        return flat + self.base + [self.w, self.w2, float(self.n), self.k]

    def load(self, flat: list[float]) -> None:
        m = 4 * len(SKILL_GRID)
        self.sums = [list(flat[i : i + 4]) for i in range(0, m, 4)]
        self.base = list(flat[m : m + 2])
        self.w, self.w2, n, self.k = flat[m + 2 : m + 6]
        self.n = int(n)


CANDIDATES = ("network", "blend")  # besides "simple" (ewma-band), the default


@dataclass
class _BandChoice:
    """Which band to serve at one horizon, per level: past matured interval scores only.

    For each candidate (the network's band, the blend) and level it keeps decayed sums of the
    interval score difference against the simple band. A candidate is served when it beats the simple
    band by ``margin`` and by two standard errors, counting overlapping h-step labels as n / h
    independent ones, once ``min_n`` of those exist; otherwise the simple band is served.
    """

    # sums[level][candidate] = [sum d, sum d^2]; base[level] = sum of the simple band's scores
    sums: list[list[list[float]]] = field(
        default_factory=lambda: [[[0.0, 0.0] for _ in CANDIDATES] for _ in LEVELS]
    )
    base: list[float] = field(default_factory=lambda: [0.0 for _ in LEVELS])
    w: float = 0.0
    w2: float = 0.0
    n: int = 0
    served: list[str] = field(default_factory=lambda: ["simple" for _ in LEVELS])

    def update(
        self,
        y: float,
        network: Band,
        simple: Band,
        horizon: int,
        decay: float,
        min_n: int,
        margin: float,
    ) -> None:
        self.w = decay * self.w + 1.0
        self.w2 = decay * decay * self.w2 + 1.0
        blend = _blend(network, simple)
        for li, alpha in enumerate(LEVELS):
            j = 2 * li  # lo, hi of this level in a Band
            s = interval_score(simple[j], simple[j + 1], y, alpha)
            self.base[li] = decay * self.base[li] + s
            for ci, band in enumerate((network, blend)):
                d = interval_score(band[j], band[j + 1], y, alpha) - s
                acc = self.sums[li][ci]
                acc[0] = decay * acc[0] + d
                acc[1] = decay * acc[1] + d * d
        self.n += 1
        n_eff = (self.w * self.w / self.w2) / horizon
        for li in range(len(LEVELS)):
            self.served[li] = self._choose(li, n_eff, min_n, margin)

    def _choose(self, li: int, n_eff: float, min_n: int, margin: float) -> str:
        if n_eff < min_n or self.base[li] <= 0.0:
            return "simple"
        best, best_rel = "simple", 1.0 - margin
        for ci, name in enumerate(CANDIDATES):
            s1, s2 = self.sums[li][ci]
            if _beats(s1, s2, self.w, n_eff, 2.0):
                rel = 1.0 + s1 / self.base[li]
                if rel < best_rel:
                    best, best_rel = name, rel
        return best

    def ratio(self, li: int) -> float:
        """The network band's decayed interval score over the simple band's (< 1: it wins)."""
        if self.base[li] <= 0.0:
            return float("nan")
        return 1.0 + self.sums[li][0][0] / self.base[li]

    def state(self) -> list[float]:
        flat = [v for lv in self.sums for acc in lv for v in acc]
        return (
            flat
            + self.base
            + [self.w, self.w2, float(self.n)]
            + [float(CANDIDATES.index(s) + 1 if s in CANDIDATES else 0) for s in self.served]
        )

    def load(self, flat: list[float]) -> None:
        k = 2 * len(CANDIDATES)
        m = k * len(LEVELS)
        self.sums = [
            [list(flat[li * k + 2 * ci : li * k + 2 * ci + 2]) for ci in range(len(CANDIDATES))]
            for li in range(len(LEVELS))
        ]
        self.base = list(flat[m : m + len(LEVELS)])
        m += len(LEVELS)
        self.w, self.w2, n = flat[m : m + 3]
        self.n = int(n)
        names = ("simple", *CANDIDATES)
        self.served = [names[int(v)] for v in flat[m + 3 : m + 3 + len(LEVELS)]]


def _blend(a: Band, b: Band) -> Band:
    return (
        0.5 * (a[0] + b[0]),
        0.5 * (a[1] + b[1]),
        0.5 * (a[2] + b[2]),
        0.5 * (a[3] + b[3]),
    )


def _pick(name: str, network: Band, simple: Band) -> Band:
    if name == "network":
        return network
    if name == "blend":
        return _blend(network, simple)
    return simple


class Forecaster:
    """One coin's forecaster (see the module docstring)."""

    def __init__(
        self,
        coin: str,
        config: ForecastConfig | None = None,
        *,
        seed: int = 0,
        learner: Learner | None = None,
    ) -> None:
        self.coin = coin
        self.config = config or ForecastConfig()
        c = self.config
        if learner is not None and learner.config.horizons != c.horizons:
            raise ValueError("a shared learner must use the same horizons")
        self.learner = learner or Learner(c, seed)
        self.shared = learner is not None
        self.seed = seed
        self.norm = Normaliser(step_seconds=c.bar_seconds, vol_halflife=c.vol_halflife)
        self.rows: deque[list[float]] = deque(maxlen=c.window)
        self.pending: dict[int, _Pending] = {}
        self.evaluator = Evaluator(c.horizons)
        # The network's half-widths times a multiplier per level, tracked like ewma-band's q (labels
        # of long horizons overlap and arrive late: eta / sqrt(h) keeps one long move from
        # swinging it); the network learns the shape, the tracker keeps coverage honest.
        self.net_q = [
            QuantileTracker(c.band_eta / math.sqrt(h), 1.0, q95_start(h) / Z95) for h in c.horizons
        ]
        self.simple = EwmaBand(c.horizons, halflife=c.vol_halflife)  # the baseline, scored only
        self.vol = VolBand(c.horizons, halflife=c.vol_halflife)  # served until beaten
        self.choice = [_BandChoice() for _ in c.horizons]
        self.skill = [_Skill() for _ in c.horizons]
        self.last_ts: int | None = None
        self.bars_seen = 0
        self.state = "warming up"
        self.last_loss: float | None = None
        self._skill_decay = 0.5 ** (1.0 / c.skill_halflife)
        self._band_decay = 0.5 ** (1.0 / c.band_halflife)
        # Called with every scored prediction (backtest --predictions): (issued_ts, horizon,
        # price, outcome, mean, raw, served band).
        self.on_score: Callable[[int, int, float, float, float, float, Band], None] | None = None

    # -- the online loop -------------------------------------------------------------------------

    def observe(self, bar: Bar, ref: float | None = None) -> ForecastEvent | None:
        """Ingest one bar; return the forecast made at ``bar.ts`` (None while warming up).

        ``ref`` is an optional cross-coin input: another coin's (e.g. BTC's) latest log return
        divided by its volatility, for the same minute. The bar is never modified.
        """
        if bar.coin != self.coin:
            raise ValueError(f"bar for {bar.coin!r} given to the {self.coin!r} forecaster")
        if self.last_ts is not None and bar.ts <= self.last_ts:
            return None  # duplicates and out-of-order bars carry nothing new
        if not (bar.price > 0 and math.isfinite(bar.price)):
            return None
        c = self.config
        t = self.norm.index(bar.ts)
        self._score_matured(t, bar)
        if self.norm.count > 0 and self.norm.last_price > 0.0:
            r = math.log(bar.price / self.norm.last_price)
            self.simple.update(r, t - self.norm.last_index)
            self.vol.update(r, t - self.norm.last_index)
        self.rows.append(self.norm.update(bar.ts, bar.price, bar.high, bar.low, ref))
        self.last_ts = bar.ts
        self.bars_seen += 1
        self._drop_old(t)
        if len(self.rows) < c.window:
            return None
        if self.state == "warming up":
            self.state = "idle"
        x = torch.tensor(list(self.rows), dtype=torch.float32)  # (T, F)
        mu_z, w_z = self.learner.predict(x)
        # The network's unit per horizon is the simple band's sigma: its half-widths start as that
        # band's and learn only the departures the data shows (floored for flat markets).
        scale = tuple(
            max(self.vol.sigma(i), VOL_FLOOR * math.sqrt(h)) for i, h in enumerate(c.horizons)
        )
        raw = tuple(m * s for m, s in zip(mu_z, scale))
        mean = tuple(sk.k * r if sk.k else 0.0 for sk, r in zip(self.skill, raw))  # no -0.0
        network: list[Band] = []
        volband: list[Band] = []
        simple: list[Band] = []
        served: list[Band] = []
        for i, m in enumerate(mean):
            q = self.net_q[i].q
            w80 = w_z[i][0] * scale[i] * q[0.2]
            w95 = w_z[i][1] * scale[i] * q[0.05]
            net = (m - w80, m + w80, m - w95, m + w95)
            vb = self.vol.band(i)
            simp = self.simple.band(i)
            s80, s95 = self.choice[i].served
            b80, b95 = _pick(s80, net, vb), _pick(s95, net, vb)
            # Levels may be served from different bands: keep the 95 % band around the 80 % one.
            served.append((b80[0], b80[1], min(b95[2], b80[0]), max(b95[3], b80[1])))
            network.append(net)
            volband.append(vb)
            simple.append(simp)
        lo80, hi80, lo95, hi95 = (tuple(b[j] for b in served) for j in range(4))
        drift = tuple(self.norm.drift * h for h in c.horizons)
        sample = None
        if not bar.filled:
            nan = float("nan")
            sample = _Sample(x=x, y=torch.full((len(c.horizons),), nan))
        self.pending[t] = _Pending(
            bar.price,
            bar.filled,
            scale,
            raw,
            mean,
            drift,
            lo80,
            hi80,
            lo95,
            hi95,
            tuple(network),
            tuple(volband),
            tuple(simple),
            sample,
        )
        return ForecastEvent(
            self.coin, bar.ts, bar.price, c.horizons, mean, lo80, hi80, lo95, hi95, raw
        )

    def _score_matured(self, t: int, bar: Bar) -> None:
        if bar.filled:
            return  # a filled price is never a label
        c = self.config
        for i, h in enumerate(c.horizons):
            p = self.pending.get(t - h)
            if p is None or p.filled or p.sample is None:
                continue
            y = math.log(bar.price / p.price)
            net, vb, simp = p.network[i], p.volband[i], p.simple[i]
            served = (p.lo80[i], p.hi80[i], p.lo95[i], p.hi95[i])
            self.evaluator.score(h, t - h, y, p.mean[i], p.raw[i], p.drift[i], served, net, simp)
            if self.on_score is not None:
                ts = (t - h) * c.bar_seconds
                self.on_score(ts, h, p.price, y, p.mean[i], p.raw[i], served)
            # Each tracker steps on the band it issued (a miss is judged by that band).
            self.net_q[i].update(not net[0] <= y <= net[1], not net[2] <= y <= net[3])
            self.simple.trackers[i].update(not simp[0] <= y <= simp[1], not simp[2] <= y <= simp[3])
            self.vol.trackers[i].update(not vb[0] <= y <= vb[1], not vb[2] <= y <= vb[3])
            self.choice[i].update(y, net, vb, h, self._band_decay, c.band_min_n, c.band_margin)
            self.skill[i].update(p.raw[i], y, h, self._skill_decay, c.skill_min_n, c.skill_margin)
            with self.learner.lock:  # the sample may sit in a batch being built on another thread
                p.sample.y[i] = scaled_target(p.price, bar.price, p.scale[i])
                if not p.sample.in_buffer:
                    p.sample.in_buffer = True
                    self.learner.buffer.add(p.sample)

    def _drop_old(self, t: int) -> None:
        horizon = max(self.config.horizons)
        if len(self.pending) > horizon + 1:
            for k in [k for k in self.pending if k < t - horizon]:
                del self.pending[k]

    def train(self, steps: int | None = None) -> TrainEvent | None:
        """Do ``steps`` (default ``config.steps_per_minute``) gradient steps on matured samples.

        Returns None when there is nothing to learn yet; a ``"rolled back"`` event when the
        divergence guard fired.
        """
        steps = self.config.steps_per_minute if steps is None else steps
        if steps <= 0:
            return None
        out = self.learner.train_steps(steps)
        if out is None:
            return None
        loss, rolled = out
        if math.isfinite(loss):
            self.last_loss = loss
        self.state = "rolled back" if rolled else "training"
        return self.status()

    def scaled_return_at(self, ts: int) -> float | None:
        """This coin's vol-scaled return of the bar at ``ts``, if that is the last bar observed.

        The cross-coin input: pass the reference coin's (e.g. bitcoin's) value as ``ref`` when
        observing other coins' bars of the same minute, after observing the reference bar.
        """
        if self.last_ts != ts or not self.rows:
            return None
        return self.rows[-1][0]

    @property
    def steps_per_minute(self) -> int:
        return self.config.steps_per_minute

    def warm(self, bars: Sequence[Bar]) -> ForecastEvent | None:
        """Observe history without training (a reloaded model catching up); the last forecast.

        Bars at or before the last one seen are skipped, so giving the whole stored window to a
        model restored from a checkpoint only feeds it the minutes it missed.
        """
        last = None
        for bar in bars:
            out = self.observe(bar)
            if out is not None:
                last = out
        return last

    def pretrain(
        self, bars: Sequence[Bar], progress: Callable[[float], None] | None = None
    ) -> TrainEvent:
        """Cold start on the history available: the same observe-then-train loop as live.

        Filled bars only warm the features up (they are never targets), so a history made only of
        backfill gives nothing to learn and the model stays at its persistence-like start.
        """
        n = len(bars)
        self.state = "pretraining"
        for i, bar in enumerate(bars):
            self.observe(bar)
            self.learner.train_steps(self.config.steps_per_minute)
            if progress is not None and (i % 50 == 0 or i == n - 1):
                progress((i + 1) / n)
        if progress is not None and n == 0:
            progress(1.0)
        self.state = (
            "training"
            if self.learner.step
            else ("idle" if len(self.rows) >= self.config.window else "warming up")
        )
        return self.status()

    # -- reporting -------------------------------------------------------------------------------

    def status(self) -> TrainEvent:
        lr = self.learner
        state = self.state
        if lr.cooldown > 0 and state == "training":
            state = "rolled back"
        warm = None
        if state == "warming up":
            warm = min(1.0, len(self.rows) / self.config.window)
        return TrainEvent(
            coin=self.coin,
            state=state,
            step=lr.step,
            loss=self.last_loss,
            lr=lr.lr,
            step_ms=lr.last_step_ms,
            samples=len(lr.buffer),
            progress=warm,
            device="cpu",
            message=lr.message,
            losses=tuple(lr.losses),
        )

    def metrics(self, exact: bool = False) -> MetricsEvent:
        """Prequential scores so far; the live default refreshes the best lag every 60 scores."""
        rows = tuple(
            dataclasses.replace(
                row,
                served80=ch.served[0],
                served95=ch.served[1],
                recent_ratio80=ch.ratio(0),
                recent_ratio95=ch.ratio(1),
                recent_n=ch.n,
            )
            for row, ch in zip(self.evaluator.rows(exact), self.choice)
        )
        return MetricsEvent(self.coin, rows)

    # -- checkpoints -----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write one checkpoint dict atomically."""
        with self.learner.lock:
            learner_state = copy.deepcopy(self.learner.state())
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "coin": self.coin,
            "config": _config_dict(self.config),
            "learner": learner_state,
            "normaliser": self.norm.state(),
            "rows": list(self.rows),
            "net_q": [tr.state() for tr in self.net_q],
            "simple": self.simple.state(),
            "vol": self.vol.state(),
            "choice": [ch.state() for ch in self.choice],
            "skill": [s.state() for s in self.skill],
            "evaluator": self.evaluator.state(),
            "pending": [_pending_state(t, p) for t, p in self.pending.items()],
            "last_ts": self.last_ts,
            "bars_seen": self.bars_seen,
            "seed": self.seed,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        write_atomic(path, buf.getvalue())

    @classmethod
    def load(
        cls,
        path: Path,
        coin: str,
        config: ForecastConfig | None = None,
        *,
        learner: Learner | None = None,
    ) -> Forecaster:
        """Rebuild a forecaster; raises ModelError when the file is unreadable or incompatible."""
        try:
            ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ModelError(f"no checkpoint at {path}") from None
        # torch raises many types for a damaged file: each becomes the one ModelError here.
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{path}: unreadable checkpoint ({exc.__class__.__name__})") from None
        try:
            if not isinstance(ckpt, dict) or not isinstance(ckpt.get("format"), int):
                raise ModelError(f"{path}: not a cryptotui checkpoint")
            if ckpt["format"] < CHECKPOINT_FORMAT:
                raise ModelConfigChanged(f"{path}: checkpoint made by an earlier cryptotui")
            if ckpt["format"] != CHECKPOINT_FORMAT:
                raise ModelError(
                    f"{path}: checkpoint of format {ckpt['format']}, newer than this cryptotui"
                )
            saved = _config_from(ckpt["config"])
            cfg = config or saved
            if _shape_keys(cfg) != _shape_keys(saved):
                raise ModelConfigChanged(
                    f"{path}: checkpoint was made with a different model configuration"
                )
            fc = cls(coin, cfg, seed=int(ckpt["seed"]), learner=learner)
            if not fc.shared or fc.learner.step == 0:
                # A shared model takes its weights from the first checkpoint loaded into it.
                fc.learner.load_state(ckpt["learner"])
            fc.norm = Normaliser.from_state(dict(ckpt["normaliser"]))
            fc.rows.clear()
            fc.rows.extend([float(v) for v in r] for r in ckpt["rows"])
            n_h = len(cfg.horizons)
            if any(len(ckpt[k]) != n_h for k in ("net_q", "choice")):
                raise ModelError(f"{path}: checkpoint has other horizons")
            for tr, flat in zip(fc.net_q, ckpt["net_q"]):
                tr.load([float(v) for v in flat])
            fc.simple.load([float(v) for v in ckpt["simple"]])
            fc.vol.load([float(v) for v in ckpt["vol"]])
            for ch, flat in zip(fc.choice, ckpt["choice"]):
                ch.load([float(v) for v in flat])
            if len(ckpt["skill"]) != len(fc.skill):
                raise ModelError(f"{path}: checkpoint has other horizons")
            for s, flat in zip(fc.skill, ckpt["skill"]):
                s.load([float(v) for v in flat])
            fc.evaluator.load_state(ckpt["evaluator"])
            fc.pending = dict(_pending_from(d) for d in ckpt["pending"])
            fc.last_ts = ckpt["last_ts"]
            fc.bars_seen = int(ckpt["bars_seen"])
            fc.state = "idle" if len(fc.rows) >= cfg.window else "warming up"
            if fc.learner.step:
                fc.state = "training"
            return fc
        except ModelError:
            raise
        # Missing keys, wrong shapes, wrong types: any of them is an incompatible file.
        except Exception as exc:  # noqa: BLE001
            raise ModelError(
                f"{path}: incompatible checkpoint ({exc.__class__.__name__}: {exc})"
            ) from None


_TUPLES = ("scale", "raw", "mean", "drift", "lo80", "hi80", "lo95", "hi95")
_BANDS = ("network", "volband", "simple")


def _pending_state(t: int, p: _Pending) -> dict[str, Any]:
    d: dict[str, Any] = {"t": t, "price": p.price, "filled": p.filled}
    d.update({k: list(getattr(p, k)) for k in _TUPLES})
    d.update({k: [list(b) for b in getattr(p, k)] for k in _BANDS})
    if p.sample is not None:
        d["x"], d["y"] = p.sample.x, p.sample.y
    return d


def _pending_from(d: dict[str, Any]) -> tuple[int, _Pending]:
    sample = None
    if "x" in d:
        # The replay buffer is not saved, so a restored sample enters it again on its next label.
        sample = _Sample(x=d["x"].float(), y=d["y"].float().clone())
    tuples: dict[str, Any] = {k: tuple(float(v) for v in d[k]) for k in _TUPLES}
    for k in _BANDS:
        tuples[k] = tuple(tuple(float(v) for v in b) for b in d[k])
    return int(d["t"]), _Pending(float(d["price"]), bool(d["filled"]), sample=sample, **tuples)


def _config_dict(cfg: ForecastConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["horizons"] = list(cfg.horizons)
    return d


def _config_from(d: dict[str, Any]) -> ForecastConfig:
    names = {f.name for f in fields(ForecastConfig)}
    kw = {k: v for k, v in d.items() if k in names}
    if "horizons" in kw:
        kw["horizons"] = tuple(int(h) for h in kw["horizons"])
    return ForecastConfig(**kw)


def _shape_keys(cfg: ForecastConfig) -> tuple[Any, ...]:
    # What the weights and the saved state depend on; the rest may change between runs.
    return (cfg.horizons, cfg.window, cfg.hidden, cfg.bar_seconds)


class LstmFactory:
    """Makes and reloads coins' forecasters (an ``engine.forecast.base.ForecasterFactory``).

    With ``shared=True`` every coin trains one model: ``make`` and ``load`` both attach the coin to
    the factory's one ``Learner`` (the first checkpoint loaded supplies its weights); features,
    calibration and scores stay per coin.
    """

    def __init__(
        self, config: ForecastConfig | None = None, *, shared: bool = False, seed: int = 0
    ) -> None:
        self.config = config or ForecastConfig()
        self.seed = seed
        self.learner = Learner(self.config, seed) if shared else None

    def make(self, coin: str) -> Forecaster:
        return Forecaster(coin, self.config, seed=self.seed, learner=self.learner)

    def load(self, path: Path, coin: str) -> Forecaster:
        return Forecaster.load(path, coin, self.config, learner=self.learner)
