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
    spend: FloatArray, target: int, limits: Sequence[CentLimit] = ()
) -> IntArray:
    """Whole cents per cell-month adding up to ``target`` and keeping ``limits``.

    Parameters
    ----------
    spend
        Spend in money, any shape; negative noise is treated as zero.
    target
        The total the cents must add up to.
    limits
        Rules to keep after rounding, where a swap of cents can keep them.
    """
    exact = np.maximum(spend, 0.0).reshape(-1) * 100
    floors = np.floor(exact + 1e-6).astype(np.int64)
    ceilings = np.maximum(np.ceil(exact - 1e-6).astype(np.int64), floors)
    cents = _largest_remainder(exact, floors, target)
    for _ in range(10 * len(limits) + 1000):
        if not _repair_one(cents, floors, ceilings, exact - floors, limits):
            break
    if _broken(cents, limits):
        cents = _exact_rounding(floors, ceilings, exact - floors, target, limits, cents)
    return cents.reshape(spend.shape)


def _broken(cents: IntArray, limits: Sequence[CentLimit]) -> bool:
    for limit in limits:
        held = int(cents[limit.inside].sum())
        if held < limit.low or (limit.high is not None and held > limit.high):
            return True
    return False


def _exact_rounding(
    floors: IntArray,
    ceilings: IntArray,
    remainder: FloatArray,
    target: int,
    limits: Sequence[CentLimit],
    fallback: IntArray,
) -> IntArray:
    """Round up exactly the cells a small integer program picks.

    When no single swap mends a rule (two rules can each block the other's
    repair), choose for every cell with a fraction of a cent whether it
    rounds up: the cents must add up to the target and keep every limit,
    preferring the largest remainders. Returns ``fallback`` if no such
    rounding exists within a few seconds.
    """
    free = np.flatnonzero(ceilings > floors)
    n = len(free)
    highs = new_highs({"presolve": "on", "mip_rel_gap": 0.0}, time_limit=10.0)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, 1 + len(limits)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = remainder[free]
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    rows = [np.ones(n)] + [limit.inside[free].astype(float) for limit in limits]
    missing = target - int(floors.sum())
    lower = [missing] + [
        limit.low - int(floors[limit.inside].sum()) for limit in limits
    ]
    upper = [missing] + [
        np.inf if limit.high is None else limit.high - int(floors[limit.inside].sum())
        for limit in limits
    ]
    matrix = np.vstack(rows)
    lp.row_lower_, lp.row_upper_ = np.array(lower, float), np.array(upper, float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    nonzero = matrix != 0
    lp.a_matrix_.start_ = np.r_[0, np.cumsum(nonzero.sum(axis=1))].astype(np.int32)
    lp.a_matrix_.index_ = np.nonzero(nonzero)[1].astype(np.int32)
    lp.a_matrix_.value_ = matrix[nonzero]
    highs.passModel(lp)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return fallback
    up = np.round(np.array(highs.getSolution().col_value)).astype(np.int64)
    cents = floors.copy()
    cents[free] += up
    return cents if not _broken(cents, limits) else fallback


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
    """Swap one cent to mend the first broken limit; False if none is broken."""
    held = [int(cents[limit.inside].sum()) for limit in limits]
    broken = [
        i
        for i, limit in enumerate(limits)
        if held[i] < limit.low or (limit.high is not None and held[i] > limit.high)
    ]
    if not broken:
        return False
    limit = limits[broken[0]]
    raise_inside = held[broken[0]] < limit.low
    into = limit.inside if raise_inside else ~limit.inside
    can_rise = np.flatnonzero(into & (cents < ceilings))
    can_fall = np.flatnonzero(~into & (cents > floors))
    for up in can_rise[np.argsort(-remainder[can_rise], kind="stable")]:
        for down in can_fall[np.argsort(remainder[can_fall], kind="stable")]:
            if _keeps_others(up, down, held, limits, broken[0]):
                cents[up] += 1
                cents[down] -= 1
                return True
    return False


def _keeps_others(
    up: int, down: int, held: list[int], limits: Sequence[CentLimit], mending: int
) -> bool:
    for i, limit in enumerate(limits):
        if i == mending:
            continue
        change = int(limit.inside[up]) - int(limit.inside[down])
        after = held[i] + change
        if change < 0 and after < limit.low:
            return False
        if change > 0 and limit.high is not None and after > limit.high:
            return False
    return True
