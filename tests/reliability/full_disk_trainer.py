"""t2t-mm-trainer on a disk that fills up at the first save from step 4 on.

`python -m tests.reliability.full_disk_trainer <trainer flags>` runs the
trainer with `tf.train.CheckpointManager.save` replaced: from step 4 on it
does what SaveV2 does on a full disk (a partial part file in
`model.ckpt-<step>_temp/`, then `ResourceExhaustedError` with the OS's "No
space left on device"). Used by test_resume.py; a real full disk needs a
tmpfs mount (root).
"""

from __future__ import annotations

import os

import tensorflow as tf

from programs import trainer

FULL_FROM_STEP = 4
_save = tf.train.CheckpointManager.save


def _save_on_a_full_disk(self, checkpoint_number=None, **kwargs):
    if checkpoint_number is None or checkpoint_number < FULL_FROM_STEP:
        return _save(self, checkpoint_number=checkpoint_number, **kwargs)
    temp = os.path.join(self.directory, f"model.ckpt-{checkpoint_number}_temp")
    os.makedirs(temp, exist_ok=True)
    part = os.path.join(temp, "part-00000-of-00001.data-00000-of-00001")
    with open(part, "wb") as f:
        f.write(b"\0" * 4096)
    raise tf.errors.ResourceExhaustedError(
        None, None, f"{part}; No space left on device"
    )


tf.train.CheckpointManager.save = _save_on_a_full_disk

if __name__ == "__main__":
    trainer.run()
