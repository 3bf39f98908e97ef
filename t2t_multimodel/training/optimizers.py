"""Adam with one fused kernel per variable and lazy embedding rows (T2T).

The released recipe trains with T2T's (Lazy)Adam: beta_1 0.85, beta_2 0.997,
epsilon 1e-6 (multimodel_facts.md section 5.2), i.e. TF1's
`tf.train.AdamOptimizer` update with epsilon outside the bias correction:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m = beta_1 m + (1 - beta_1) g;  v = beta_2 v + (1 - beta_2) g^2
    var -= lr_t * m / (sqrt(v) + epsilon)

`FusedAdam` runs that as one `ResourceApplyAdam` kernel per dense variable
(performance_notes.md: 18 ms instead of Keras Adam's 62 ms of element-wise ops
for 28M parameters) and, for `IndexedSlices` gradients (embedding lookups),
updates only the rows that were looked up, as LazyAdam does. It is a
`tf.Module`, so `tf.train.Checkpoint` tracks its slots and step counter.
Raw TF ops are used on purpose: this is the training back end, not a layer.

Under a `tf.distribute` strategy, call `apply` in replica context with
gradients that are already all-reduced; it updates every replica's copy of
each variable through `merge_call` and `extended.update`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

Schedule = Callable[[tf.Tensor], tf.Tensor]


def _unwrap(variable) -> tf.Variable:
    """The `tf.Variable` (maybe distributed) behind a Keras variable."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _slot_name(variable, suffix: str) -> str:
    name = getattr(variable, "path", None) or variable.name
    return f"{name.replace('/', '_').replace(':', '_')}_{suffix}"


def deduplicate_indexed_slices(
    values: tf.Tensor, indices: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Sums the rows of `values` that share an index.

    Args:
      values: `[n, ...]` gradient rows.
      indices: `[n]` row ids, possibly repeated.

    Returns:
      `(summed_values [u, ...], unique_indices [u])`.
    """
    unique, positions = tf.unique(indices)
    summed = tf.math.unsorted_segment_sum(
        values, positions, tf.shape(unique)[0]
    )
    return summed, unique


class FusedAdam(tf.Module):
    """TF1-style Adam: fused dense kernels, lazy sparse rows.

    Args:
      learning_rate: a schedule (`step -> rate`) or a float.
      beta_1: first-moment decay.
      beta_2: second-moment decay.
      epsilon: added to `sqrt(v)` (outside the bias correction).
      lazy_sparse: update only looked-up rows for `IndexedSlices` gradients
        (LazyAdam); with False they are densified first.
      name: module name.
    """

    def __init__(
        self,
        learning_rate: Schedule | float,
        *,
        beta_1: float = 0.85,
        beta_2: float = 0.997,
        epsilon: float = 1e-6,
        lazy_sparse: bool = True,
        name: str = "fused_adam",
    ):
        super().__init__(name=name)
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.lazy_sparse = lazy_sparse
        self.iterations = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="iterations",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.m: list[tf.Variable] = []
        self.v: list[tf.Variable] = []
        self._built = False

    def build(self, variables: Sequence) -> None:
        """Creates the zero-initialised `m` and `v` slots of `variables`.

        Call it under the strategy's scope, in the same order on every worker
        (under MultiWorkerMirroredStrategy, creating a variable is a
        collective broadcast).
        """
        if self._built:
            return
        for var in variables:
            base = _unwrap(var)
            for slots, suffix in ((self.m, "m"), (self.v, "v")):
                slots.append(
                    tf.Variable(
                        tf.zeros(base.shape, base.dtype),
                        trainable=False,
                        name=_slot_name(var, suffix),
                    )
                )
        self._built = True

    def current_learning_rate(self) -> tf.Tensor:
        """The rate of the next update (the schedule at `iterations`)."""
        if callable(self.learning_rate):
            return tf.cast(self.learning_rate(self.iterations), tf.float32)
        return tf.constant(self.learning_rate, tf.float32)

    def apply(self, grads: Sequence, variables: Sequence) -> None:
        """Applies one Adam update; call in replica (or default) context.

        Args:
          grads: one gradient per variable (dense or `IndexedSlices`), already
            summed or averaged over replicas.
          variables: the variables, in `build` order.
        """
        if not self._built:
            raise ValueError("FusedAdam.build(variables) must be called first")
        ctx = tf.distribute.get_replica_context()
        if ctx is None:  # Cross-replica context: apply directly.
            self._distributed_apply(
                tf.distribute.get_strategy(), list(grads), variables
            )
            return
        ctx.merge_call(self._distributed_apply, args=(list(grads), variables))

    def _distributed_apply(self, strategy, grads, variables) -> None:
        lr = self.current_learning_rate()
        t = tf.cast(self.iterations + 1, tf.float32)
        beta_1_power = tf.pow(tf.constant(self.beta_1, tf.float32), t)
        beta_2_power = tf.pow(tf.constant(self.beta_2, tf.float32), t)
        for grad, var, m, v in zip(grads, variables, self.m, self.v):
            strategy.extended.update(
                _unwrap(var),
                self._update_one,
                args=(grad, m, v, lr, beta_1_power, beta_2_power),
                group=False,
            )
        self.iterations.assign_add(1)

    def _update_one(self, var, grad, m, v, lr, beta_1_power, beta_2_power):
        dtype = var.dtype
        lr = tf.cast(lr, dtype)
        b1, b2 = tf.cast(beta_1_power, dtype), tf.cast(beta_2_power, dtype)
        if isinstance(grad, tf.IndexedSlices):
            if self.lazy_sparse:
                return self._sparse_update(var, grad, m, v, lr, b1, b2)
            grad = tf.convert_to_tensor(grad)
        return tf.raw_ops.ResourceApplyAdam(
            var=var.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=b1,
            beta2_power=b2,
            lr=lr,
            beta1=tf.constant(self.beta_1, dtype),
            beta2=tf.constant(self.beta_2, dtype),
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(grad, dtype),
        )

    def _sparse_update(self, var, grad, m, v, lr, b1_power, b2_power):
        # LazyAdam: moments and weights change only in the looked-up rows.
        values, indices = deduplicate_indexed_slices(
            tf.cast(grad.values, var.dtype), grad.indices
        )
        lr_t = lr * tf.sqrt(1.0 - b2_power) / (1.0 - b1_power)
        m_rows = self.beta_1 * tf.gather(m, indices) + (1 - self.beta_1) * (
            values
        )
        v_rows = self.beta_2 * tf.gather(v, indices) + (
            1 - self.beta_2
        ) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, indices))
        v.scatter_update(tf.IndexedSlices(v_rows, indices))
        step = lr_t * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        return var.scatter_sub(tf.IndexedSlices(step, indices))


class KerasOptimizer(tf.Module):
    """Adapts a Keras optimizer to `FusedAdam`'s `build`/`apply` interface.

    Used by the benchmark to compare with Keras' `Adam`, and available to runs
    that want another Keras optimizer. Keras all-reduces the gradients itself
    under a strategy, so give it per-replica (not yet reduced) gradients.

    Args:
      optimizer: a Keras optimizer.
    """

    all_reduces_gradients = True

    def __init__(self, optimizer: keras.optimizers.Optimizer):
        super().__init__(name="keras_optimizer")
        self.optimizer = optimizer

    @property
    def iterations(self):
        return self.optimizer.iterations

    def build(self, variables: Sequence) -> None:
        self.optimizer.build(list(variables))

    def current_learning_rate(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.optimizer.learning_rate)

    def apply(self, grads: Sequence, variables: Sequence) -> None:
        self.optimizer.apply_gradients(zip(grads, variables))
