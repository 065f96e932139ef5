"""Response curves as concave piecewise-linear functions, cell by cell, month by month.

Every curve becomes a list of pieces: piece ``k`` of a cell-month can absorb
``width[k]`` of spend and returns ``slope[k]`` conversions per unit of spend.
Slopes never rise along a cell-month's pieces (diminishing returns), so a
maximizing linear program fills them in order without integer variables.

* ``linear``: one piece, ``cpc * monthly_clicks`` wide, slope
  ``conversion_rate / cpc``.
* ``saturating``: ``f(s) = max_conversions * (1 - exp(-s / scale))`` is cut
  where it reaches ``saturation * max_conversions`` and replaced by chords
  between breakpoints equally spaced in ``1 - exp(-s / (2 * scale))``. That
  spacing makes the pieces shorter where the curve bends most and gives every
  chord about the same error; the largest error is reported.
* ``points``: the chords between the given breakpoints, from the origin.

Seasonality scales a month's curve: a volume multiplier ``v`` and a cost
multiplier ``k`` turn ``f(s)`` into ``v * f(s / (k * v))``: ``v`` times as many
people at ``k`` times the price each.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from optimizer.scenario import (
    TAG_FIELDS,
    Adjustment,
    CurveKind,
    CurvePoint,
    Response,
    Scenario,
    Scope,
    Seasonality,
    Segment,
    unpack_where,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class CurveWarning(UserWarning):
    """A curve was changed to fit the model; the message says how much."""


@dataclass(frozen=True)
class Approximation:
    """How far the pieces of saturating curves fall below the true curves."""

    pieces: int
    saturation: float
    max_error_share: float
    worst_cell: str | None

    def describe(self) -> str:
        """The approximation in one sentence."""
        if self.worst_cell is None:
            return "no saturating curves: the pieces are exact"
        return (
            f"saturating curves use {self.pieces} pieces up to "
            f"{self.saturation:.0%} of saturation; the largest gap to the true "
            f"curve is {self.max_error_share:.3%} of max_conversions "
            f"(cell {self.worst_cell})"
        )


@dataclass(frozen=True)
class CellCurves:
    """The pieces of every cell in every month, flat and in canonical order.

    Pieces are grouped by cell-month, ``group = cell * months + month``, and
    within a group ordered by falling slope.
    """

    cells: tuple[Response, ...]
    segments: tuple[Segment, ...]
    months: tuple[str, ...]
    group: IntArray
    width: FloatArray
    slope: FloatArray
    clicks_per_money: FloatArray
    approximation: Approximation
    held_out: FloatArray
    """Share of each cell's volume kept out of the plan as a holdout."""
    suppressed: tuple[tuple[str, str], ...] = ()
    """Cells left out by a suppression rule, with the rule's id."""
    _masks: dict[tuple[Scope, str | None], BoolArray] = field(
        default_factory=dict, repr=False, compare=False
    )

    def cell_months_in(self, scope: Scope, id_: str | None) -> BoolArray:
        """Which cell-months (flattened cells x months) a scope covers.

        A scope is a kind and an id, such as channel ``linkedin`` or month
        ``2027-03``; ``total`` covers everything. Results are cached.
        """
        key = (scope, id_)
        if key not in self._masks:
            cells, months = self.shape
            if scope is Scope.TOTAL:
                mask = np.ones((cells, months), dtype=bool)
            elif scope is Scope.MONTH:
                mask = np.zeros((cells, months), dtype=bool)
                mask[:, self.months.index(str(id_))] = True
            else:
                in_scope = np.array(
                    [
                        _in_scope(c, s, scope, id_)
                        for c, s in zip(self.cells, self.segments, strict=True)
                    ],
                    dtype=bool,
                )
                mask = np.repeat(in_scope[:, None], months, axis=1)
            self._masks[key] = mask.reshape(-1)
        return self._masks[key]

    def columns_in(self, scope: Scope, id_: str | None) -> BoolArray:
        """Which pieces (the program's columns) a scope covers."""
        return self.cell_months_in(scope, id_)[self.group]

    @functools.cached_property
    def labels(self) -> pd.DataFrame:
        """The descriptive columns of a cells x months table, built once."""
        months = len(self.months)
        columns: dict[str, object] = {
            "segment_id": np.repeat([c.segment_id for c in self.cells], months),
            "channel_id": np.repeat([c.channel_id for c in self.cells], months),
            "cell": np.repeat([c.cell_id for c in self.cells], months),
            "month": np.tile(list(self.months), len(self.cells)),
            "stage": np.repeat([s.stage.value for s in self.segments], months),
        }
        for tag in TAG_FIELDS:
            values = [getattr(s, tag) or "" for s in self.segments]
            columns[tag] = np.repeat(values, months)
        columns["curve"] = np.repeat([c.curve.value for c in self.cells], months)
        columns["conversion_path"] = np.repeat(
            [c.conversion_path for c in self.cells], months
        )
        return pd.DataFrame(columns)

    @property
    def shape(self) -> tuple[int, int]:
        """Cells by months."""
        return len(self.cells), len(self.months)

    @property
    def capacity(self) -> FloatArray:
        """The most each cell can spend in each month before volume runs out."""
        return self.per_cell_month(self.width)

    def per_cell_month(self, per_piece: FloatArray) -> FloatArray:
        """Sum a per-piece quantity into a cells x months array."""
        total = np.bincount(
            self.group, weights=per_piece, minlength=math.prod(self.shape)
        )
        return total.reshape(self.shape)

    def fill(self, spend: FloatArray) -> FloatArray:
        """How much of each piece a cells x months spend uses, filling in order."""
        start = self._piece_start()
        available = spend.reshape(-1)[self.group] - start
        return np.clip(available, 0.0, self.width)

    def conversions(self, spend: FloatArray) -> FloatArray:
        """Monthly conversions of each cell at the given spend (cells x months)."""
        return self.per_cell_month(self.fill(spend) * self.slope)

    def marginal(self, spend: FloatArray, *, tolerance: float = 1e-9) -> FloatArray:
        """Conversions the next unit of spend buys in each cell-month.

        Zero where the cell's volume is used up. Because slopes fall along the
        pieces, the first piece with room left has the largest slope of them.
        """
        room = self.fill(spend) < self.width * (1 - tolerance)
        result = np.zeros(math.prod(self.shape))
        np.maximum.at(result, self.group[room], self.slope[room])
        return result.reshape(self.shape)

    def _piece_start(self) -> FloatArray:
        """Spend at which each piece starts within its cell-month."""
        cumulative = np.cumsum(self.width)
        group_start = np.zeros(len(self.width), dtype=bool)
        group_start[0:1] = True
        group_start[1:] = self.group[1:] != self.group[:-1]
        first = np.flatnonzero(group_start)
        offset = np.repeat(
            cumulative[first] - self.width[first],
            np.diff(np.r_[first, len(self.width)]),
        )
        return cumulative - self.width - offset


def build_curves(scenario: Scenario) -> CellCurves:
    """Turn every cell's curve and the seasonality into pieces.

    The scenario must have passed :func:`optimizer.checks.check_scenario`.
    Cells are ordered by segment id then channel id, so the order of the
    input rows never changes the model.
    """
    segments = {segment.segment_id: segment for segment in scenario.segments}
    suppressed = suppressed_cells(scenario)
    cells = tuple(
        sorted(
            (r for r in scenario.responses if r.cell_id not in suppressed),
            key=lambda r: (r.segment_id, r.channel_id),
        )
    )
    months = scenario.plan.month_labels
    held_out = holdout_shares([segments[c.segment_id] for c in cells], scenario)
    # Multiplying in a fixed order keeps the pieces identical to the last
    # bit whatever the order of the input rows.
    rows: list[Seasonality | Adjustment] = sorted(
        (*scenario.seasonality, *scenario.adjustments),
        key=lambda r: (
            r.month or "",
            r.channel_id or "",
            r.segment_id or "",
            r.volume,
            r.cost,
        ),
    )
    volume, cost = seasonal_multipliers(cells, months, rows)
    volume *= (1 - held_out)[:, None]
    points = _points_by_cell(scenario.points)

    groups, widths, slopes = [np.zeros(0, np.int64)], [np.zeros(0)], [np.zeros(0)]
    for index, cell in enumerate(cells):
        spend, conversions = base_breakpoints(
            cell, points.get(cell.cell_id, ()), scenario
        )
        base_width = np.diff(spend)
        base_slope = np.diff(conversions) / base_width
        # months x pieces at once: month m scales spend by cost * volume and
        # slopes by 1 / cost; pieces with no room are dropped.
        width = (cost[index] * volume[index])[:, None] * base_width[None, :]
        slope = base_slope[None, :] / cost[index][:, None]
        month_of = np.broadcast_to(np.arange(len(months))[:, None], width.shape)
        keep = width > 0
        groups.append(index * len(months) + month_of[keep])
        widths.append(width[keep])
        slopes.append(slope[keep])

    clicks = np.array(
        [
            [
                1.0 / (cell.cpc * cost[i, m]) if cell.cpc else np.nan
                for m in range(len(months))
            ]
            for i, cell in enumerate(cells)
        ]
    ).reshape(len(cells), len(months))
    curves = CellCurves(
        cells=cells,
        segments=tuple(segments[cell.segment_id] for cell in cells),
        months=months,
        group=np.concatenate(groups).astype(np.int64),
        width=np.concatenate(widths),
        slope=np.concatenate(slopes),
        clicks_per_money=clicks,
        approximation=_approximation(cells, scenario),
        held_out=held_out,
        suppressed=tuple(sorted(suppressed.items())),
    )
    logger.info("built %d curve pieces for %d cells", len(curves.width), len(cells))
    return curves


def _in_scope(cell: Response, segment: Segment, scope: Scope, id_: str | None) -> bool:
    if scope is Scope.CHANNEL:
        return cell.channel_id == id_
    if scope is Scope.CELL:
        return cell.cell_id == id_
    if scope is Scope.SEGMENT:
        return cell.segment_id == id_
    if scope is Scope.SEGMENTS:
        return segment.matches(unpack_where(id_))
    return segment.attribute(str(scope)) == id_


def suppressed_cells(scenario: Scenario) -> dict[str, str]:
    """Cells a suppression rule keeps out of the plan, and the rule's id."""
    segments = {segment.segment_id: segment for segment in scenario.segments}
    left_out: dict[str, str] = {}
    for rule in scenario.suppressions:
        for response in scenario.responses:
            segment = segments.get(response.segment_id)
            if segment is None or not segment.matches(rule.where):
                continue
            if rule.channels and response.channel_id not in rule.channels:
                continue
            left_out.setdefault(response.cell_id, rule.id)
    return left_out


def holdout_shares(segments: Sequence[Segment], scenario: Scenario) -> FloatArray:
    """Share of each cell's volume held out; several holdouts compound."""
    kept = np.ones(len(segments))
    for holdout in scenario.holdouts:
        hit = np.array([s.matches(holdout.where) for s in segments], dtype=bool)
        kept[hit] *= 1 - holdout.share
    return 1 - kept


def base_breakpoints(
    cell: Response, points: Sequence[CurvePoint], scenario: Scenario
) -> tuple[FloatArray, FloatArray]:
    """Spend and conversion breakpoints of a cell's curve, from the origin."""
    if cell.curve is CurveKind.LINEAR:
        assert cell.cpc is not None and cell.monthly_clicks is not None
        assert cell.conversion_rate is not None
        top = cell.cpc * cell.monthly_clicks
        if top == 0:
            return np.zeros(1), np.zeros(1)
        reachable = cell.conversion_rate * cell.monthly_clicks
        return np.array([0.0, top]), np.array([0.0, reachable])
    if cell.curve is CurveKind.SATURATING:
        assert cell.max_conversions is not None and cell.scale is not None
        settings = scenario.curves
        spend = saturating_breakpoints(cell.scale, settings.pieces, settings.saturation)
        return spend, cell.max_conversions * -np.expm1(-spend / cell.scale)
    spend = np.array([0.0, *(p.spend for p in points)])
    conversions = np.array([0.0, *(p.conversions for p in points)])
    if scenario.curves.concave_hull:
        return spend, _concave_hull(cell, spend, conversions)
    return spend, conversions


def saturating_breakpoints(scale: float, pieces: int, saturation: float) -> FloatArray:
    """Breakpoints equally spaced in ``1 - exp(-s / (2 * scale))``.

    The chord error of a piece of width ``h`` is about ``h**2 * |f''| / 8``,
    and ``|f''|`` is proportional to ``f'``; pieces of width proportional to
    ``f' ** -0.5`` therefore equalize it, which is this spacing.
    """
    end = -scale * math.log1p(-saturation)
    top = -math.expm1(-end / (2 * scale))
    fractions = np.linspace(0.0, top, pieces + 1)
    spend = -2 * scale * np.log1p(-fractions)
    spend[-1] = end
    return spend


def saturating_chord_error(scale: float, spend: FloatArray) -> float:
    """Largest gap, as a share of max_conversions, between f and its chords."""
    f = -np.expm1(-spend / scale)
    slope = np.diff(f) / np.diff(spend)
    # The gap to a chord peaks where f'(s) equals its slope:
    # s = scale * ln(1 / (scale * slope)).
    peak = np.clip(-scale * np.log(scale * slope), spend[:-1], spend[1:])
    gap = -np.expm1(-peak / scale) - (f[:-1] + slope * (peak - spend[:-1]))
    return float(gap.max(initial=0.0))


def seasonal_multipliers(
    cells: Sequence[Response],
    months: Sequence[str],
    rows: Sequence[Seasonality | Adjustment],
) -> tuple[FloatArray, FloatArray]:
    """Volume and cost multipliers per cell and month; matching rows multiply.

    A row without a month (a what-if adjustment) applies to every month.
    """
    volume = np.ones((len(cells), len(months)))
    cost = np.ones((len(cells), len(months)))
    month_index = {label: m for m, label in enumerate(months)}
    for row in rows:
        m = slice(None) if row.month is None else month_index[row.month]
        for i, cell in enumerate(cells):
            if row.segment_id not in (None, cell.segment_id):
                continue
            if row.channel_id not in (None, cell.channel_id):
                continue
            volume[i, m] *= row.volume
            cost[i, m] *= row.cost
    return volume, cost


def _points_by_cell(points: Sequence[CurvePoint]) -> dict[str, list[CurvePoint]]:
    grouped: dict[str, list[CurvePoint]] = {}
    for point in points:
        grouped.setdefault(f"{point.segment_id}/{point.channel_id}", []).append(point)
    for cell_points in grouped.values():
        cell_points.sort(key=lambda p: p.spend)
    return grouped


def _concave_hull(
    cell: Response, spend: FloatArray, conversions: FloatArray
) -> FloatArray:
    """The least concave majorant of the points, at the same spends.

    Warns with how much the hull adds over the given points.
    """
    hull = [0]
    for k in range(1, len(spend)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (spend[b] - spend[a]) * (conversions[k] - conversions[a]) - (
                conversions[b] - conversions[a]
            ) * (spend[k] - spend[a])
            if cross < 0:
                break
            hull.pop()
        hull.append(k)
    lifted = np.interp(spend, spend[hull], conversions[hull])
    gain = lifted - conversions
    worst = int(np.argmax(gain))
    if gain[worst] > 1e-12:
        share = gain[worst] / conversions[worst] if conversions[worst] > 0 else math.inf
        warnings.warn(
            f"cell {cell.cell_id}: the concave hull adds {gain[worst]:.4g} "
            f"conversions per month ({share:.1%}) at spend {spend[worst]:.10g}; "
            "fix the points to keep the curve as measured.",
            CurveWarning,
            stacklevel=4,
        )
    return lifted


def _approximation(cells: Sequence[Response], scenario: Scenario) -> Approximation:
    settings = scenario.curves
    worst_cell, worst = None, 0.0
    for cell in cells:
        if cell.curve is not CurveKind.SATURATING or cell.scale is None:
            continue
        spend = saturating_breakpoints(cell.scale, settings.pieces, settings.saturation)
        error = saturating_chord_error(cell.scale, spend)
        if worst_cell is None or error > worst:
            worst_cell, worst = cell.cell_id, error
    return Approximation(settings.pieces, settings.saturation, worst, worst_cell)
