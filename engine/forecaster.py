"""Per-coin online forecaster: multi-horizon log-return forecasts with calibrated bands, learning live.

Per observed bar (``observe``, cheap, one forward pass):
  1. matured predictions are scored (model, persistence, EWMA drift) by ``engine.evaluate``; the
     conformal trackers and the skill factor update on them; the samples get their labels and enter
     the replay buffer;
  2. the bar becomes a feature row (``engine.features``), and a forecast is made from the last
     ``window`` rows with the EMA copy of the weights.
``train`` then does a few gradient steps on batches mixing recent and replayed samples.

Honesty rules: inputs, scales, calibration and the skill factor use only data from before the
forecast; filled (backfilled) bars are context, never a target nor a scored label.

Served mean = k_h * raw, where raw is the network's mean and k_h in [0, 1] is the candidate factor
with the lowest past error relative to "no change" (follow the leader over matured predictions,
k=0 until a k > 0 has proved better by a margin). Intervals are mean +- q * spread, spread being the
network's sigma times vol*sqrt(h); q follows the conformal quantile tracker
(q += eta * (miss - alpha)), so coverage holds when volatility shifts.

Shared mode (``make_forecaster_factory(shared=True)``): the per-coin Forecasters share one
``Learner`` (network, EMA, optimiser, replay buffer, divergence guard); features, calibration,
skill and scores stay per coin.
"""

from __future__ import annotations

import bisect
import copy
import gc
import io
import logging
import math
import os
import random
import threading
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

# torch warns at import when numpy is absent; the project does not use numpy, so it is noise.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402

from engine.errors import ModelConfigChanged, ModelError  # noqa: E402
from engine.evaluate import Evaluator  # noqa: E402
from engine.events import Bar, ForecastEvent, MetricsEvent, TrainEvent  # noqa: E402
from engine.features import N_FEATURES, Normaliser, scaled_target  # noqa: E402
from engine.model import ForecastNet, ModelConfig, beta_nll  # noqa: E402

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

CHECKPOINT_FORMAT = 1
Z80 = 1.2815515655446004  # standard normal quantiles: the trackers' starting points
Z95 = 1.959963984540054
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
    lr: float = 3e-4  # constant Adam learning rate
    grad_clip: float = 1.0
    beta: float = 0.5  # beta-NLL weight exponent
    mean_penalty: float = 1.0  # ridge on the predicted mean (vol units): "no change" unless learned
    ema_decay: float = 0.99  # serving copy of the weights
    recent_size: int = 256  # replay: ring of the newest samples
    reservoir_size: int = 2048  # replay: uniform reservoir of everything older
    recent_share: float = 0.5  # share of each batch drawn from the ring
    min_samples: int = 32  # no training before this many labelled samples
    vol_halflife: float = 30.0  # bars, EWMA volatility used to scale inputs and targets
    conformal_window: int = 2000  # matured scores kept per horizon for the interval quantiles
    conformal_gamma: float = 0.01  # ACI step on alpha_t at h=1 (divided by sqrt(h))
    conformal_prior: float = 1.25  # widening of the Gaussian quantile before 30 scores exist
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
    spread: tuple[float, ...]
    drift: tuple[float, ...]
    lo80: tuple[float, ...]
    hi80: tuple[float, ...]
    lo95: tuple[float, ...]
    hi95: tuple[float, ...]
    q80: tuple[float, ...]
    q95: tuple[float, ...]
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
        out += [self.reservoir[self.rng.randrange(len(self.reservoir))] for _ in range(size - n_recent)]
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
        self._params = list(self.model.parameters())
        self._ema_params = list(self.ema.parameters())
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
    def predict(self, x: torch.Tensor) -> tuple[list[float], list[float]]:
        """Mean and sigma per horizon, vol units, from the EMA weights. ``x`` is (window, F)."""
        with self.lock:
            mu, log_sigma = self.ema(x.unsqueeze(0))  # (1, H) each
        return mu[0].tolist(), log_sigma[0].exp().tolist()

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
            mu, log_sigma = self.model(x)
            loss = beta_nll(mu, log_sigma, y, mask, c.beta)
            if c.mean_penalty > 0:
                loss = loss + c.mean_penalty * (mu**2).mean()
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

    def update(self, raw: float, y: float, horizon: int, decay: float, min_n: int, margin: float) -> None:
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


class _Conformal:
    """Adaptive conformal intervals for one horizon (ACI, Gibbs & Candes 2021).

    Scores are |y - mean| / spread: residuals in units of the network's spread times vol*sqrt(h),
    so they stay comparable when volatility shifts. The interval's half-width multiplier is the
    empirical (1 - alpha_t) quantile of the last ``window`` scores, and after every matured label
    alpha_t += gamma * (alpha - miss): misses widen the next intervals, hits narrow them.
    """

    def __init__(self, horizon: int, window: int, gamma: float, prior_inflation: float) -> None:
        self.horizon = horizon
        self.window = window
        self.gamma = gamma
        self.prior = prior_inflation
        self.order: deque[float] = deque()
        self.sorted: list[float] = []
        self.alpha = {0.2: 0.2, 0.05: 0.05}  # nominal miss rate -> alpha_t

    def quantile(self, nominal: float) -> float:
        a = self.alpha[nominal]
        if len(self.sorted) < 30:
            # Too few scores: a Gaussian quantile, widened because short histories under-cover.
            return self.prior * (Z80 if nominal == 0.2 else Z95)
        if a <= 0.0:
            return self.sorted[-1] * 1.5  # ACI says "infinite"; a finite but wide band instead
        n = len(self.sorted)
        # Split-conformal's finite-sample correction, counted in independent labels: h-step
        # labels overlap, so n scores hold about n / h of them.
        n_eff = max(n / self.horizon, 1.0)
        level = min(1.0, (1.0 - a) * (1.0 + 1.0 / n_eff))
        idx = min(n - 1, max(0, math.ceil(level * n) - 1))
        return self.sorted[idx]

    def update(self, score: float, missed80: bool, missed95: bool) -> None:
        for nominal, missed in ((0.2, missed80), (0.05, missed95)):
            a = self.alpha[nominal] + self.gamma * (nominal - float(missed))
            self.alpha[nominal] = min(max(a, -0.05), 3 * nominal)
        self.order.append(score)
        bisect.insort(self.sorted, score)
        if len(self.order) > self.window:
            old = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def state(self) -> list[float]:
        return [self.alpha[0.2], self.alpha[0.05], *self.order]

    def load(self, flat: list[float]) -> None:
        self.alpha = {0.2: flat[0], 0.05: flat[1]}
        self.order = deque(flat[2:])
        self.sorted = sorted(self.order)


class Forecaster:
    """One coin's forecaster (see the module docstring)."""

    # Set on the subclass made by make_forecaster_factory(shared=True), so that ``load`` (a
    # classmethod the engine calls as ``type(fc).load``) attaches to the same shared model.
    _shared_learner: Learner | None = None

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
        learner = learner or self._shared_learner
        self.learner = learner or Learner(c, seed)
        self.shared = learner is not None
        self.seed = seed
        self.norm = Normaliser(step_seconds=c.bar_seconds, vol_halflife=c.vol_halflife)
        self.rows: deque[list[float]] = deque(maxlen=c.window)
        self.pending: dict[int, _Pending] = {}
        self.evaluator = Evaluator(c.horizons)
        self.conformal = [
            # Labels of long horizons overlap and arrive late: a smaller ACI step keeps alpha_t
            # from swinging on one long move (measured on the eval set, see the report).
            _Conformal(h, c.conformal_window, c.conformal_gamma / math.sqrt(h), c.conformal_prior)
            for h in c.horizons
        ]
        self.skill = [_Skill() for _ in c.horizons]
        self.last_ts: int | None = None
        self.bars_seen = 0
        self.state = "warming up"
        self.last_loss: float | None = None
        self._skill_decay = 0.5 ** (1.0 / c.skill_halflife)

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
        self.rows.append(self.norm.update(bar.ts, bar.price, bar.high, bar.low, ref))
        self.last_ts = bar.ts
        self.bars_seen += 1
        self._drop_old(t)
        if len(self.rows) < c.window:
            return None
        if self.state == "warming up":
            self.state = "idle"
        x = torch.tensor(list(self.rows), dtype=torch.float32)  # (T, F)
        mu_z, sig_z = self.learner.predict(x)
        scale = tuple(self.norm.scale(h) for h in c.horizons)
        raw = tuple(m * s for m, s in zip(mu_z, scale))
        mean = tuple(sk.k * r if sk.k else 0.0 for sk, r in zip(self.skill, raw))  # no -0.0
        spread = tuple(sg * s for sg, s in zip(sig_z, scale))
        q80 = tuple(cf.quantile(0.2) for cf in self.conformal)
        q95 = tuple(cf.quantile(0.05) for cf in self.conformal)
        lo80 = tuple(m - q * s for m, q, s in zip(mean, q80, spread))
        hi80 = tuple(m + q * s for m, q, s in zip(mean, q80, spread))
        lo95 = tuple(m - q * s for m, q, s in zip(mean, q95, spread))
        hi95 = tuple(m + q * s for m, q, s in zip(mean, q95, spread))
        drift = tuple(self.norm.drift * h for h in c.horizons)
        sample = None
        if not bar.filled:
            nan = float("nan")
            sample = _Sample(x=x, y=torch.full((len(c.horizons),), nan))
        self.pending[t] = _Pending(
            bar.price, bar.filled, scale, raw, mean, spread, drift, lo80, hi80, lo95, hi95, q80, q95,
            sample,
        )
        return ForecastEvent(self.coin, bar.ts, bar.price, c.horizons, mean, lo80, hi80, lo95, hi95)

    def _score_matured(self, t: int, bar: Bar) -> None:
        if bar.filled:
            return  # a filled price is never a label
        c = self.config
        for i, h in enumerate(c.horizons):
            p = self.pending.get(t - h)
            if p is None or p.filled or p.sample is None:
                continue
            y = math.log(bar.price / p.price)
            self.evaluator.score(
                h, t - h, y, p.mean[i], p.raw[i], p.drift[i], p.lo80[i], p.hi80[i], p.lo95[i], p.hi95[i]
            )
            # Conformal update on the vol-scaled residual; a miss is judged by the band issued.
            s = abs(y - p.mean[i]) / max(p.spread[i], 1e-12)
            self.conformal[i].update(s, not p.lo80[i] <= y <= p.hi80[i], not p.lo95[i] <= y <= p.hi95[i])
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
        self.state = "training" if self.learner.step else (
            "idle" if len(self.rows) >= self.config.window else "warming up"
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
        return MetricsEvent(self.coin, self.evaluator.rows(exact))

    @property
    def skill_factors(self) -> tuple[float, ...]:
        """The shrink factor k per horizon currently applied to the network's mean."""
        return tuple(s.k for s in self.skill)

    # -- checkpoints -----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write one checkpoint dict atomically (temp file in the same dir, then os.replace)."""
        with self.learner.lock:
            learner_state = copy.deepcopy(self.learner.state())
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "coin": self.coin,
            "config": _config_dict(self.config),
            "learner": learner_state,
            "normaliser": self.norm.state(),
            "rows": list(self.rows),
            "conformal": [cf.state() for cf in self.conformal],
            "skill": [s.state() for s in self.skill],
            "evaluator": self.evaluator.state(),
            "pending": [_pending_state(t, p) for t, p in self.pending.items()],
            "last_ts": self.last_ts,
            "bars_seen": self.bars_seen,
            "seed": self.seed,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

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
        except Exception as exc:  # torch raises many types for a damaged file
            raise ModelError(f"{path}: unreadable checkpoint ({exc.__class__.__name__})") from None
        try:
            if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
                raise ModelError(f"{path}: not a cryptotui checkpoint of format {CHECKPOINT_FORMAT}")
            saved = _config_from(ckpt["config"])
            cfg = config or saved
            if _shape_keys(cfg) != _shape_keys(saved):
                raise ModelConfigChanged(f"{path}: checkpoint was made with a different model configuration")
            fc = cls(coin, cfg, seed=int(ckpt["seed"]), learner=learner)
            if not fc.shared or fc.learner.step == 0:
                # A shared model takes its weights from the first checkpoint loaded into it.
                fc.learner.load_state(ckpt["learner"])
            fc.norm = Normaliser.from_state(dict(ckpt["normaliser"]))
            fc.rows.clear()
            fc.rows.extend([float(v) for v in r] for r in ckpt["rows"])
            if len(ckpt["conformal"]) != len(fc.conformal):
                raise ModelError(f"{path}: checkpoint has other horizons")
            for cf, flat in zip(fc.conformal, ckpt["conformal"]):
                cf.load([float(v) for v in flat])
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
        except Exception as exc:  # missing keys, wrong shapes: an incompatible file
            raise ModelError(f"{path}: incompatible checkpoint ({exc.__class__.__name__}: {exc})") from None


_TUPLES = ("scale", "raw", "mean", "spread", "drift", "lo80", "hi80", "lo95", "hi95", "q80", "q95")


def _pending_state(t: int, p: _Pending) -> dict[str, Any]:
    d: dict[str, Any] = {"t": t, "price": p.price, "filled": p.filled}
    d.update({k: list(getattr(p, k)) for k in _TUPLES})
    if p.sample is not None:
        d["x"], d["y"] = p.sample.x, p.sample.y
    return d


def _pending_from(d: dict[str, Any]) -> tuple[int, _Pending]:
    sample = None
    if "x" in d:
        # The replay buffer is not saved, so a restored sample enters it again on its next label.
        sample = _Sample(x=d["x"].float(), y=d["y"].float().clone())
    tuples = {k: tuple(float(v) for v in d[k]) for k in _TUPLES}
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


def make_forecaster_factory(
    config: ForecastConfig | None = None, shared: bool = False, seed: int = 0
) -> Callable[[str], Forecaster]:
    """A ``coin -> Forecaster`` factory; with ``shared=True`` all coins train one model.

    In shared mode ``type(fc).load(path, coin)`` keeps the coin on the shared model (the first
    checkpoint loaded supplies its weights); features, calibration and scores stay per coin.
    """
    cfg = config or ForecastConfig()
    if not shared:
        return lambda coin: Forecaster(coin, cfg, seed=seed)

    class SharedForecaster(Forecaster):
        _shared_learner = Learner(cfg, seed)

    return lambda coin: SharedForecaster(coin, cfg, seed=seed)
