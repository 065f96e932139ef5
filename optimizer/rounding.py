"""Rounding a plan's spend to whole cents without breaking its totals or rules.

Each cell-month gets its spend rounded down or up to a cent, never further.
First the largest-remainder method makes the cents add up to the exact total.
Then, where rounding pushed a rule's scope across its bound (a minimum
missed by a few cents, say), single cents are swapped between a cell inside
the scope that was rounded down and one outside that was rounded up, as long
as the swap breaks no other rule. Every cell stays within one cent of the
solver's spend, and the total is unchanged by a swap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

from optimizer.solve import new_highs

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CentLimit:
    """A rule's bounds on the cents of the cell-months in ``inside``."""

    inside: BoolArray
    low: int
    high: int | None


def round_to_cents(
    spend: FloatArray,
    target: int,
    limits: Sequence[CentLimit] = (),
    *,
    room: FloatArray | None = None,
) -> IntArray:
    """Whole cents per cell-month adding up to ``target`` and keeping ``limits``.

    Parameters
    ----------
    spend
        Spend in money, any shape; negative noise is treated as zero.
    target
        The total the cents must add up to.
    limits
        Rules to keep after rounding.
    room
        The most each cell-month can spend, in money (same shape as spend);
        no cell is rounded past it.
    """
    exact = np.maximum(spend, 0.0).reshape(-1) * 100
    floors = np.floor(exact + 1e-6).astype(np.int64)
    ceilings = np.maximum(np.ceil(exact - 1e-6).astype(np.int64), floors)
    cents = _largest_remainder(exact, floors, target)
    for _ in range(10 * len(limits) + 1000):
        if not _repair_one(cents, floors, ceilings, exact - floors, limits):
            break
    if breaks(cents, limits):
        most = None if room is None else np.floor(room.reshape(-1) * 100 + 1e-6)
        cents = _exact_rounding(exact, target, limits, cents, most)
    return cents.reshape(spend.shape)


def breaks(cents: IntArray, limits: Sequence[CentLimit]) -> bool:
    """Whether the cents break any limit."""
    for limit in limits:
        held = int(cents[limit.inside].sum())
        if held < limit.low or (limit.high is not None and held > limit.high):
            return True
    return False


def _exact_rounding(
    exact: FloatArray,
    target: int,
    limits: Sequence[CentLimit],
    fallback: IntArray,
    most: FloatArray | None,
) -> IntArray:
    """The cents closest to the exact spend that keep every limit.

    When no swap of single cents mends a rule (a rule bound can fall between
    two cents while every neighbour is held by a rule of its own), a small
    integer program chooses whole cents within a few cents of the exact
    spend: they add up to the target, keep every limit and the cells' room,
    and move as little money as possible. Returns ``fallback`` when even
    that fails.
    """
    n = len(exact)
    reach = 5
    lower = np.maximum(np.floor(exact) - reach, 0.0)
    upper = np.ceil(exact) + reach
    if most is not None:
        upper = np.maximum(np.minimum(upper, most), np.floor(exact + 1e-6))
    # Columns: the cents c, then the distance e >= |c - exact| of each cell.
    highs = new_highs({"presolve": "on", "mip_rel_gap": 0.0}, time_limit=10.0)
    lp = highspy.HighsLp()
    lp.num_col_ = 2 * n
    lp.sense_ = highspy.ObjSense.kMinimize
    lp.col_cost_ = np.r_[np.zeros(n), np.ones(n)]
    lp.col_lower_ = np.r_[lower, np.zeros(n)]
    lp.col_upper_ = np.r_[upper, np.full(n, np.inf)]
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n + [
        highspy.HighsVarType.kContinuous
    ] * n
    cells = np.arange(n)
    rows = [(cells, np.ones(n), float(target), float(target))]
    rows += [
        (
            np.flatnonzero(limit.inside),
            np.ones(int(limit.inside.sum())),
            float(limit.low),
            np.inf if limit.high is None else float(limit.high),
        )
        for limit in limits
    ]
    rows += [
        (np.array([i, n + i]), np.array([1.0, -1.0]), -np.inf, exact[i]) for i in cells
    ]
    rows += [
        (np.array([i, n + i]), np.array([1.0, 1.0]), exact[i], np.inf) for i in cells
    ]
    lp.num_row_ = len(rows)
    lp.row_lower_ = np.array([row[2] for row in rows])
    lp.row_upper_ = np.array([row[3] for row in rows])
    counts = np.array([len(row[0]) for row in rows])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.r_[0, np.cumsum(counts)].astype(np.int32)
    lp.a_matrix_.index_ = np.concatenate([row[0] for row in rows]).astype(np.int32)
    lp.a_matrix_.value_ = np.concatenate([row[1] for row in rows]).astype(float)
    highs.passModel(lp)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return fallback
    cents = np.round(np.array(highs.getSolution().col_value)[:n]).astype(np.int64)
    if int(cents.sum()) != target or breaks(cents, limits):
        return fallback
    return cents


def _largest_remainder(exact: FloatArray, floors: IntArray, target: int) -> IntArray:
    cents = floors.copy()
    remainder = exact - floors
    missing = int(target - cents.sum())
    if missing >= 0:
        cents[np.argsort(-remainder, kind="stable")[:missing]] += 1
    else:
        candidates = np.flatnonzero(cents > 0)
        order = np.argsort(remainder[candidates], kind="stable")
        cents[candidates[order][:-missing]] -= 1
    return cents


def _repair_one(
    cents: IntArray,
    floors: IntArray,
    ceilings: IntArray,
    remainder: FloatArray,
    limits: Sequence[CentLimit],
) -> bool:
    """Swap one cent to mend the first broken limit; False if none is broken.

    Candidates are tried best first: the cell to raise with the largest
    remainder, and for it every cell to lower at once, smallest remainder
    first, keeping the first swap that breaks no other limit.
    """
    if not limits:
        return False
    inside = np.vstack([limit.inside for limit in limits]).astype(np.int64)
    low = np.array([limit.low for limit in limits])
    high = np.array([np.inf if limit.high is None else limit.high for limit in limits])
    held = inside @ cents
    broken = np.flatnonzero((held < low) | (held > high))
    if len(broken) == 0:
        return False
    mending = int(broken[0])
    into = inside[mending].astype(bool)
    if held[mending] > high[mending]:
        into = ~into
    can_rise = np.flatnonzero(into & (cents < ceilings))
    can_fall = np.flatnonzero(~into & (cents > floors))
    can_fall = can_fall[np.argsort(remainder[can_fall], kind="stable")]
    others = np.arange(len(limits)) != mending
    for up in can_rise[np.argsort(-remainder[can_rise], kind="stable")]:
        change = inside[:, [up]] - inside[:, can_fall]
        after = held[:, None] + change
        breaks_low = (change < 0) & (after < low[:, None])
        breaks_high = (change > 0) & (after > high[:, None])
        keeps = ~((breaks_low | breaks_high) & others[:, None]).any(axis=0)
        if keeps.any():
            cents[up] += 1
            cents[can_fall[int(np.argmax(keeps))]] -= 1
            return True
    return False
