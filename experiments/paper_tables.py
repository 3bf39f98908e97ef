"""The rows and tables of the paper's experiments in miniature (issue 10).

Each row is one gin experiment file of `gin/experiments/paper/`, trained by
`bin/t2t-mm-trainer`; each table lays the rows out as the paper's Tables 2-4
do (multimodel_facts.md section 6), with the offline demo problems standing
in for the paper's: Fashion-MNIST for ImageNet, the Ding EN-DE and gettext
EN-FR sentences for WMT, espeak-ng speech for WSJ speech, 40 AllenNLP trees
for WSJ parsing. The paper's figures are recalled and unverified
(multimodel_facts.md says so for every number of Tables 2-4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

ENDE = "demo_translate_ende_ding"
DEEN = "demo_translate_deen_ding"
ENFR = "demo_translate_enfr_gettext"
PARSE = "demo_parse_ptb_allennlp"
IMAGE = "demo_image_fashion_mnist"
SPEECH = "demo_speech_espeak"
CAPTION = "demo_caption_openclipart"
ALL = (ENDE, DEEN, ENFR, PARSE, IMAGE, SPEECH, CAPTION)
STEPS_PER_PROBLEM = 300

SHORT_NAMES = {
    ENDE: "translate_ende",
    DEEN: "translate_deen",
    ENFR: "translate_enfr",
    PARSE: "parse",
    IMAGE: "image",
    SPEECH: "speech",
    CAPTION: "caption",
}
# The paper's problem each demo problem stands in for.
PAPER_PROBLEMS = {
    IMAGE: "ImageNet",
    ENDE: "WMT EN→DE",
    ENFR: "WMT EN→FR",
    SPEECH: "WSJ speech",
    PARSE: "WSJ parsing",
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One training run of a table (one gin experiment file).

    Attributes:
      name: the row's name (its model directory).
      gin_file: the experiment file, absolute or relative to the trainer's
        gin search paths (`paper/<name>.gin`).
      problems: the problems it trains on (uniform mixing).
      steps: its TRAIN_STEPS at the default budget.
    """

    name: str
    gin_file: str
    problems: tuple[str, ...]
    steps: int

    def steps_for(self, steps_per_problem: int | None) -> int:
        """TRAIN_STEPS for a budget of `steps_per_problem` (None: default)."""
        if steps_per_problem is None:
            return self.steps
        return steps_per_problem * len(self.problems)


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: one row for all problems, or a row per problem."""

    header: str
    rows: str | Mapping[str, str]

    def row_for(self, problem: str) -> str:
        """The row whose results fill this column for `problem`."""
        if isinstance(self.rows, str):
            return self.rows
        return self.rows[problem]


@dataclasses.dataclass(frozen=True)
class Table:
    """A results table in the paper's layout.

    Attributes:
      key: short name (plot file names).
      title: the heading.
      description: what it compares, one paragraph (`{steps_per_problem}`
        is replaced by the budget).
      problems: the problems (table lines).
      columns: the compared columns; the first is the reference.
      paper: problem -> the paper's figure per column ("log-ppl / acc").
      paper_note: where the paper's figures come from.
    """

    key: str
    title: str
    description: str
    problems: tuple[str, ...]
    columns: tuple[Column, ...]
    paper: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=dict
    )
    paper_note: str = ""


def _row(name: str, problems: tuple[str, ...]) -> Row:
    return Row(
        name, f"paper/{name}.gin", problems, STEPS_PER_PROBLEM * len(problems)
    )


SINGLE_ROWS = {p: f"single_{SHORT_NAMES[p]}" for p in ALL}
ROWS = (
    _row("joint_all", ALL),
    *(_row(SINGLE_ROWS[p], (p,)) for p in ALL),
    _row("parse_fashion", (PARSE, IMAGE)),
    _row("joint_all_no_moe", ALL),
    _row("joint_all_no_attention", ALL),
)
_UNVERIFIED = (
    "Paper figures: recalled, **unverified** (multimodel_facts.md section 6: "
    "the paper shows this table only as an image); they are for the paper's "
    "problem named in brackets, at full scale."
)
TABLES = (
    Table(
        "table2",
        "Table 2 analogue: joint training vs each problem alone",
        "One model trained on all 7 demo problems (uniform mixing, "
        "{steps_per_problem} steps per problem) vs a model per problem "
        "trained alone for the same number of steps on its problem.",
        ALL,
        (
            Column("Joint (7 problems)", "joint_all"),
            Column("Single problem", SINGLE_ROWS),
        ),
        {
            IMAGE: ("1.7 / 66%", "1.6 / 67%"),
            ENDE: ("1.4 / 72%", "1.4 / 71%"),
            SPEECH: ("4.4 / 41%", "5.7 / 23%"),
            PARSE: ("0.15 / 98%", "0.20 / 97%"),
        },
        _UNVERIFIED,
    ),
    Table(
        "table3",
        "Table 3 analogue: parsing alone, with Fashion-MNIST, with all tasks",
        "Parsing trained alone, with Fashion-MNIST (the stand-in for "
        "ImageNet) and with all 7 demo problems, "
        "{steps_per_problem} parsing steps in each.",
        (PARSE,),
        (
            Column("Alone", SINGLE_ROWS[PARSE]),
            Column("With Fashion-MNIST", "parse_fashion"),
            Column("With 7 problems", "joint_all"),
        ),
        {
            PARSE: (
                "0.20 / 97.1% / 11.7%",
                "0.16 / 97.5% / 12.7%",
                "0.15 / 97.9% / 14.5%",
            )
        },
        "Paper figures (log-ppl / per-token acc. / fully correct trees): "
        "recalled, **unverified** (multimodel_facts.md section 6); parsing "
        "alone, with ImageNet, with the 8 problems.",
    ),
    Table(
        "table4",
        "Table 4 analogue: ablations (joint training on all 7 problems)",
        "The joint model of Table 2 with all blocks, without the MoE layers "
        "(encoder and decoder), and without attention (the mixer's attention "
        "block and the decoder's source attentions replaced by the mean of "
        "the encoded inputs: `use_attention=False`).",
        ALL,
        (
            Column("All blocks", "joint_all"),
            Column("Without MoE", "joint_all_no_moe"),
            Column("Without attention", "joint_all_no_attention"),
        ),
        {
            IMAGE: ("1.6 / 67%", "1.6 / 66%", "1.6 / 67%"),
            ENFR: ("1.2 / 76%", "1.3 / 74%", "1.4 / 72%"),
        },
        _UNVERIFIED,
    ),
)
