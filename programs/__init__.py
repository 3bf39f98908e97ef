"""The command-line programs' logic: one module per program.

Each module holds one program's flags and its short `main`, called by the
console entry points of setup.cfg (and the thin scripts in bin/): `datagen`
(t2t-mm-datagen), `trainer`, `decoder`, `exporter`, `serve`, `importer`
(t2t-mm-import), `avg_checkpoints` (t2t-mm-avg-checkpoints) and `demo`
(with `demo_report`). `gin_setup` is the one gin set-up they share: the
shipped gin files, search paths and error messages; `t2t_flags` translates
T2T's flags to gin for the trainer and decoder.
The programs import the library and `problems`; nothing imports them.
"""

import os

# TensorFlow's C++ log lines are noise for a program's user, its ERROR lines
# included: a CPU machine gets "failed call to cuInit" and oneDNN's "supports
# DT_INT32 only on platforms with AVX-512" on every run, although nothing is
# wrong. Real failures reach the user as Python exceptions. Set before any
# program module imports TensorFlow; a user's own value wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
