"""Learning-rate schedules of the released MultiModel recipe (T2T).

Two schedules, as Keras `LearningRateSchedule`s so that both the fused Adam of
`optimizers.py` and any Keras optimizer take them:

- `NoamSchedule`: T2T's `noam` (Vaswani et al. 2017), used by
  `multimodel_base` (multimodel_facts.md section 5.3):
  `lr(s) = learning_rate * d^-0.5 * min((s+1) * w^-1.5, (s+1)^-0.5)`.
  T2T computed `hparams.learning_rate * 5000 * 0.002 * d^-0.5 * min(...)`
  (5000: the noam scheme's constant; 0.002: T2T's "Adam correction"), so
  T2T's `learning_rate=0.1` is `learning_rate=1.0` here.
- `Exp500kSchedule`: the `exp500k` scheme released with the paper
  (`multimodel1p8`, section 5.2): the factor `f` rises exponentially from
  0.01 to 1 over the warmup, then decays as
  `0.9999955^max(0, s - (train_steps - 500k))`; the rate is
  `learning_rate * f / 500 / sqrt(worker_replicas)` (the 1/500 is the same
  0.002 Adam correction), with the warmup stretched by `worker_replicas` as
  in the 2017 trainer.

`s` is the 0-based global step of the update being made. The math uses `tf`
ops (not `keras.ops`) because training code is TensorFlow-only (STYLE.md 3).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

# T2T's constant factors, kept apart so the docstrings' arithmetic shows.
T2T_NOAM_CONSTANT = 5000.0
T2T_ADAM_CORRECTION = 0.002


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class NoamSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """T2T's `noam`: linear warmup, then inverse square-root decay.

    `lr(s) = learning_rate * hidden_dim^-0.5 *
    min((s+1) * warmup_steps^-1.5, (s+1)^-0.5)`; it peaks at
    `learning_rate * (hidden_dim * warmup_steps)^-0.5` at `s + 1 =
    warmup_steps`. T2T multiplied by 5000 * 0.002 = 10 on top (see the module
    docstring): `multimodel_base`'s `learning_rate=0.1` is 1.0 here (a peak of
    about 7.0e-4 at step 4000 for d=512).

    Args:
      learning_rate: the scale in front (T2T's value times 10).
      hidden_dim: the model width `d`.
      warmup_steps: steps of linear warmup `w`.
    """

    def __init__(
        self, learning_rate: float, hidden_dim: int, warmup_steps: int
    ):
        self.learning_rate = learning_rate
        self.hidden_dim = hidden_dim
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        s = tf.cast(step, tf.float32) + 1.0
        w = float(self.warmup_steps)
        return (
            self.learning_rate
            * self.hidden_dim**-0.5
            * tf.minimum(s * w**-1.5, tf.math.rsqrt(s))
        )

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "hidden_dim": self.hidden_dim,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class Exp500kSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The released `exp500k` exponential warmup and decay (T2T, 2017).

    With `W = warmup_steps * worker_replicas`:
    - `s < W`: `f = 0.01^((W - s) / W)` (0.01 at step 0, rising to 1);
    - `s >= W`: `f = decay_rate^max(0, s - (train_steps - decay_steps))`, so
      the decay covers the last `decay_steps` of the budget (x~0.105 at the
      end with the defaults); with `train_steps < decay_steps + W` it is
      already active at the end of warmup (T2T's jump there is kept).
    The rate is `learning_rate * f * 0.002 / sqrt(worker_replicas)`: T2T's
    `learning_rate=0.05` gives an Adam rate of 1e-4 * f.

    Args:
      learning_rate: T2T's `learning_rate` (0.05 in `multimodel1p8`).
      warmup_steps: T2T's `learning_rate_warmup_steps` (3000).
      train_steps: the run's step budget (T2T's `--train_steps`).
      decay_rate: per-step decay factor.
      decay_steps: the length of the decay window at the end of the budget.
      worker_replicas: T2T's worker count (warmup x R, rate / sqrt(R)).
    """

    def __init__(
        self,
        learning_rate: float,
        warmup_steps: int,
        train_steps: int,
        decay_rate: float = 0.9999955,
        decay_steps: int = 500_000,
        worker_replicas: int = 1,
    ):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps
        self.train_steps = train_steps
        self.decay_rate = decay_rate
        self.decay_steps = decay_steps
        self.worker_replicas = worker_replicas

    def __call__(self, step):
        s = tf.cast(step, tf.float32)
        w = float(self.warmup_steps * self.worker_replicas)
        # 0.01^((W - s) / W), written as exp so that it is one fused op.
        warmup = tf.exp(math.log(0.01) * (w - s) / w)
        decay_start = float(self.train_steps - self.decay_steps)
        # decay_rate^n as exp(n log r) with log r taken in float64: a float32
        # 0.9999955 is off by 3e-8, which compounds to 1.5% over 500k steps.
        decay = tf.exp(
            math.log(self.decay_rate) * tf.maximum(0.0, s - decay_start)
        )
        factor = tf.where(s < w, warmup, decay)
        return (
            self.learning_rate
            * T2T_ADAM_CORRECTION
            / math.sqrt(self.worker_replicas)
            * factor
        )

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "train_steps": self.train_steps,
            "decay_rate": self.decay_rate,
            "decay_steps": self.decay_steps,
            "worker_replicas": self.worker_replicas,
        }
