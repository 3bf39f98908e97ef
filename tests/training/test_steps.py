"""Tests for t2t_multimodel.training.steps: the joint (multi-problem) update."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.training import configs, inputs, loop, optimizers, steps
from t2t_multimodel.training import losses as losses_lib
from tests.training import fake_problems

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """The text and image problems, one fixed train batch of each, and
    their data_dir."""
    data_dir = str(tmp_path_factory.mktemp("data"))
    problems = [fake_problems.text_problem(), fake_problems.image_problem()]
    fake_problems.write(problems, data_dir)
    data = configs.DataConfig(batch_size=4, batch_unit="examples", max_length=8)
    features = [
        next(iter(inputs.train_dataset(p, data_dir, data, 1, None, None)))
        for p in problems
    ]
    return problems, features, data_dir


def _sgd():
    return optimizers.KerasOptimizer(keras.optimizers.SGD(0.5))


def _reference_grads(model, problems, batches):
    """Each problem's gradient from its own tape, and their sum.

    Returns `(summed dense gradients, global norm)`, the norm as the
    trainer's `tf.linalg.global_norm` takes it: over the rows of the
    (undeduplicated) `IndexedSlices` of an embedding lookup, and those of
    two problems' lookups concatenated.
    """
    sources = [v.value for v in model.trainable_variables]
    per_problem = []
    for problem, features in zip(problems, batches):
        with tf.GradientTape() as tape:
            outputs = model(
                features,
                input_modality=problem.input_modality,
                target_modality=problem.target_modality,
                training=True,
            )
            model_losses = model.compute_loss(
                features,
                outputs,
                target_modality=problem.target_modality,
                label_smoothing=0.1,
            )
            loss = losses_lib.total_loss(
                model_losses, loss_multiplier=problem.loss_multiplier
            )
        per_problem.append(tape.gradient(loss, sources))
    total, squares = [], 0.0
    for source, grads in zip(sources, zip(*per_problem)):
        grads = [g for g in grads if g is not None]
        dense = [tf.convert_to_tensor(g) for g in grads]
        total.append(tf.add_n(dense) if dense else tf.zeros_like(source))
        if grads and all(isinstance(g, tf.IndexedSlices) for g in grads):
            squares += sum(float(tf.reduce_sum(g.values**2)) for g in grads)
        else:
            squares += float(tf.reduce_sum(total[-1] ** 2))
    return total, squares**0.5


class TestJointTrainStep:
    # clip_norm 1e-2 clips every update: one clip, at the sum's global norm.
    @pytest.mark.parametrize("clip_norm", [None, 1e-2])
    def test_one_update_is_the_sum_of_the_problems_gradients(
        self, batches, clip_norm
    ):
        problems, features, _ = batches
        keras.utils.set_random_seed(1)
        model = fake_problems.tiny_model(
            modality_specs=loop.modality_specs(problems)
        )
        # Every variable, the gate noise's seed state included: the
        # reference passes draw the same noise as the joint update.
        initial = [v.numpy() for v in model.variables]
        before = [v.numpy() for v in model.trainable_variables]
        opt = _sgd()
        opt.build(model.trainable_variables)
        step = steps.make_joint_train_step(
            model,
            opt,
            tf.distribute.get_strategy(),
            pairs=[(p.input_modality, p.target_modality) for p in problems],
            label_smoothing=0.1,
            clip_norm=clip_norm,
        )
        iterators = tuple(
            iter(tf.data.Dataset.from_tensors(f).repeat()) for f in features
        )
        multipliers = tf.constant([p.loss_multiplier for p in problems])
        stats = step(iterators, multipliers)
        joint = [v.numpy() for v in model.trainable_variables]

        for v, value in zip(model.variables, initial):
            v.assign(value)
        grads, norm = _reference_grads(model, problems, features)
        np.testing.assert_allclose(stats["grad_norm"], norm, rtol=1e-5)
        if clip_norm:
            assert norm > 10 * clip_norm
            grads = [g * clip_norm / norm for g in grads]
        reference = _sgd()
        reference.build(model.trainable_variables)
        reference.apply(grads, model.trainable_variables)

        changed = 0
        for start, after, expected in zip(
            before, joint, model.trainable_variables
        ):
            np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
            changed += not np.allclose(after, start)
        assert changed > 0.5 * len(joint)
        # The per-problem stats, in the order of the pairs.
        assert stats["loss"].shape == stats["examples"].shape == (2,)
        np.testing.assert_array_equal(stats["examples"], [4.0, 4.0])
        image_task = stats["task_loss"][1] * problems[1].loss_multiplier
        np.testing.assert_allclose(
            stats["loss"][1], image_task + stats["moe_loss"][1], rtol=1e-6
        )


# Run in a fresh process: the two logical CPUs must exist before TensorFlow
# initialises its devices.
MIRRORED = """
import sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras
from t2t_multimodel.models import decoder, encoder, multimodel
from t2t_multimodel.training import configs, inputs, loop, steps
from tests.training import fake_problems

data_dir = sys.argv[1]
problems = [fake_problems.text_problem(), fake_problems.image_problem()]
data = configs.DataConfig(batch_size=4, batch_unit="examples", max_length=8)
batches = [
    next(iter(inputs.train_dataset(p, data_dir, data, 1, None, None)))
    for p in problems
]
pairs = [(p.input_modality, p.target_modality) for p in problems]
multipliers = tf.constant([p.loss_multiplier for p in problems])
initial = None


def no_moe_model(specs):
    # Without MoE: with several replicas in one process, Keras' layer
    # losses (the MoE's add_loss) are shared between the replica threads,
    # which interleave at the MoE statistics' assigns (merge_call), so a
    # replica may read another replica's MoE loss.
    return multimodel.MultiModel(
        {n: s.build(16) for n, s in specs.items()},
        encoder.Encoder(16, num_blocks=1, moe_position=None, dropout=0.0),
        decoder.Decoder(
            16,
            num_blocks=1,
            moe_position=None,
            num_heads=2,
            intermediate_dim=16,
            dropout=0.0,
        ),
    )


class SGD(tf.Module):
    # FusedAdam's interface and distributed apply, with plain SGD: unlike
    # Adam's first step, its update shows the gradient's scale.
    iterations = tf.Variable(0, dtype=tf.int64)

    def build(self, variables):
        pass

    def current_learning_rate(self):
        return tf.constant(0.5)

    def apply(self, grads, variables):
        def update(strategy, grads, variables):
            for g, v in zip(grads, variables):
                strategy.extended.update(
                    v.value,
                    lambda v, g: v.assign_sub(0.5 * tf.convert_to_tensor(g)),
                    args=(g,),
                )

        tf.distribute.get_replica_context().merge_call(
            update, args=(list(grads), variables)
        )


def update(strategy):
    global initial
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = no_moe_model(loop.modality_specs(problems))
        if initial is None:
            initial = [v.numpy() for v in model.variables]
        for v, value in zip(model.variables, initial):
            v.assign(value)
        opt = SGD()
    step = steps.make_joint_train_step(
        model, opt, strategy, pairs=pairs, label_smoothing=0.1, clip_norm=None
    )
    # Every replica gets the same batch: the all-reduced update is the
    # one-device update of that batch.
    iterators = tuple(
        iter(
            strategy.distribute_datasets_from_function(
                lambda ctx, b=b: tf.data.Dataset.from_tensors(b).repeat()
            )
        )
        for b in batches
    )
    stats = step(iterators, multipliers)
    return stats, [v.numpy() for v in model.trainable_variables]


one_stats, one = update(tf.distribute.get_strategy())
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
two_stats, two = update(mirrored)
np.testing.assert_allclose(two_stats["loss"], one_stats["loss"], rtol=1e-5)
np.testing.assert_array_equal(two_stats["examples"], [8.0, 8.0])
np.testing.assert_array_equal(two_stats["moe_loss"], [0.0, 0.0])
for a, b in zip(one, two):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("OK", len(one))
"""


def test_mirrored_two_replicas_match_one_device(batches, tmp_path):
    data_dir = batches[2]
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = subprocess.run(
        [sys.executable, str(script), data_dir],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "OK" in out.stdout
