"""One implementation identity per table cell: a cell never averages runs of different code or data.

A run's identity is what produced it (its method's, dataset's and the harness's identity digests)
and the digest of the array its method received. Within a configuration × dataset × input size,
reports use the newest identity and leave the older ones out, or show each older one as a column
of its own, named by the digest that differs. Runs recorded before the identity tags existed are
one more identity, older than any tagged one.
"""

from __future__ import annotations

import pandas as pd

from harness_reports.runs import IDENTITY_COLUMNS

CELL = ["method", "dataset", "input_size"]
CODE = ["method_identity", "dataset_identity", "core_identity"]
PART_NAMES = {"method_identity": "method", "dataset_identity": "dataset", "core_identity": "harness",
              "data_digest": "data"}  # fmt: skip
SHORT = 6
"""Hex digits of a digest in an older identity's column name."""


def split_identities(runs: pd.DataFrame, keep_older: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(shown, left_out)``: the runs of each cell's newest identity, and the others' runs.

    With ``keep_older`` nothing is left out: an older identity's runs are renamed
    ``method [method 3f2a91]`` (the part that differs from the newest and its digest, or
    ``[untagged]``) and that label is in column ``older_identity``. A run without a data digest
    (it failed before loading) belongs to the newest digest its code produced in that cell.
    Applying it again changes nothing, so every report step may call it.
    """
    if runs.empty or not set(IDENTITY_COLUMNS) <= set(runs.columns):
        return runs, runs.iloc[0:0]
    parts = runs[list(IDENTITY_COLUMNS)].fillna("").astype(str)
    frame = runs[CELL].assign(_t=runs["start_time"].fillna(0), **{f"_{c}": parts[c] for c in parts})
    by_code = [*CELL, *(f"_{c}" for c in CODE)]
    digested = frame[frame["_data_digest"] != ""].sort_values("_t")
    newest_digest = digested.drop_duplicates(by_code, keep="last").set_index(by_code)["_data_digest"]
    fill = pd.Series(
        pd.MultiIndex.from_frame(frame[by_code]).map(newest_digest), index=frame.index, dtype=object
    )
    frame["_data_digest"] = frame["_data_digest"].where(
        frame["_data_digest"] != "", fill.where(fill.notna(), "")
    )
    identity_columns = [f"_{c}" for c in IDENTITY_COLUMNS]
    frame["_identity"] = frame[identity_columns].agg("\x1f".join, axis=1)
    frame["_tagged"] = (frame[[f"_{c}" for c in CODE]] != "").any(axis=1)
    ranked = frame.groupby([*CELL, "_identity"], sort=False).agg(_tagged=("_tagged", "max"), _t=("_t", "max"))
    newest = ranked.sort_values(["_tagged", "_t"]).reset_index().drop_duplicates(CELL, keep="last")
    newest = newest.set_index(CELL)["_identity"]
    cell_newest = pd.Series(pd.MultiIndex.from_frame(frame[CELL]).map(newest), index=frame.index)
    is_newest = frame["_identity"] == cell_newest
    if not keep_older:
        return runs[is_newest], runs[~is_newest]
    labels = pd.Series("", index=runs.index)
    for _, older in frame[~is_newest].groupby([*CELL, "_identity"], sort=False):
        labels[older.index] = _label(older["_identity"].iloc[0], cell_newest[older.index[0]])
    shown = runs.assign(
        method=[
            m if not label else f"{m} [{label}]" for m, label in zip(runs["method"], labels, strict=True)
        ],
        older_identity=labels,
    )
    return shown, runs.iloc[0:0]


def _label(identity: str, newest: str) -> str:
    """What sets an older identity apart from the newest: ``method 3f2a91``, or ``untagged``."""
    values = dict(zip(IDENTITY_COLUMNS, identity.split("\x1f"), strict=True))
    if not any(values[c] for c in CODE):
        return "untagged"
    latest = dict(zip(IDENTITY_COLUMNS, newest.split("\x1f"), strict=True))
    return ", ".join(
        f"{PART_NAMES[c]} {values[c][:SHORT] or 'none'}" for c in IDENTITY_COLUMNS if values[c] != latest[c]
    )


def left_out_text(left_out: pd.DataFrame, limit: int = 3) -> str:
    """The one line a report says about what it left out (empty when nothing)."""
    if left_out.empty:
        return ""
    cells = [f"{m} on {d} {s}px" for m, d, s in left_out[CELL].drop_duplicates().itertuples(index=False)]
    where = ", ".join(cells[:limit]) + (f" and {len(cells) - limit} more" if len(cells) > limit else "")
    return (
        f"left out {len(left_out)} run(s) of older identities (earlier method, dataset or harness code, "
        f"or other data) of {where}; --all-identities shows them as columns of their own"
    )
