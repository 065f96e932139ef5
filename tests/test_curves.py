"""Curves as pieces: closed forms, dense evaluation of the true curve, hand values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from builders import (
    channel,
    linear,
    point,
    points_curve,
    saturating,
    scenario,
    season,
    segment,
)
from pydantic import ValidationError

from optimizer import CurveWarning
from optimizer.curves import (
    build_curves,
    saturating_breakpoints,
    saturating_chord_error,
)


def one_cell(response, *, months=1, points=(), seasonality=(), **settings):
    return scenario(
        segments=[segment(response.segment_id)],
        channels=[channel(response.channel_id)],
        responses=[response],
        points=points,
        seasonality=seasonality,
        months=months,
        budget=1000.0,
        spend="up_to",
        **settings,
    )


def true_saturating(max_conversions: float, scale: float, spend):
    return max_conversions * (1 - np.exp(-np.asarray(spend) / scale))


# --- linear -------------------------------------------------------------------


def test_linear_is_one_piece_of_width_cpc_times_clicks_and_slope_cr_over_cpc():
    cell = linear("s", "c", cpc=2.5, conversion_rate=0.04, monthly_clicks=800)
    curves = build_curves(one_cell(cell, months=2))
    np.testing.assert_array_equal(curves.group, [0, 1])
    np.testing.assert_allclose(curves.width, [2000.0, 2000.0], rtol=1e-15)
    np.testing.assert_allclose(curves.slope, [0.016, 0.016], rtol=1e-15)
    np.testing.assert_allclose(curves.capacity, [[2000.0, 2000.0]], rtol=1e-15)
    np.testing.assert_allclose(curves.clicks_per_money, [[0.4, 0.4]], rtol=1e-15)
    assert curves.approximation.worst_cell is None


def test_linear_without_clicks_has_no_room():
    cell = linear("s", "c", cpc=2.0, conversion_rate=0.1, monthly_clicks=0)
    curves = build_curves(one_cell(cell))
    assert len(curves.width) == 0
    np.testing.assert_array_equal(curves.capacity, [[0.0]])
    np.testing.assert_array_equal(curves.conversions(np.array([[50.0]])), [[0.0]])


# --- saturating ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pieces", "saturation"), [(1, 0.5), (4, 0.9), (8, 0.99), (20, 0.999)]
)
def test_saturating_breakpoints_match_the_closed_form(pieces, saturation):
    scale, top = 4000.0, 50.0
    # Equal steps in u = 1 - exp(-s / (2 scale)) up to the saturation spend,
    # where u = 1 - sqrt(1 - saturation).
    end_u = 1 - math.sqrt(1 - saturation)
    spend = [-2 * scale * math.log(1 - end_u * k / pieces) for k in range(pieces + 1)]
    got = saturating_breakpoints(scale, pieces, saturation)
    np.testing.assert_allclose(got, spend, rtol=1e-12, atol=1e-9)
    assert got[-1] == pytest.approx(-scale * math.log(1 - saturation), rel=1e-14)

    cell = saturating("s", "c", max_conversions=top, scale=scale)
    curves = build_curves(one_cell(cell, pieces=pieces, saturation=saturation))
    f = true_saturating(top, scale, spend)
    np.testing.assert_allclose(curves.width, np.diff(spend), rtol=1e-12)
    np.testing.assert_allclose(curves.slope, np.diff(f) / np.diff(spend), rtol=1e-10)
    assert np.all(np.diff(curves.slope) < 0)
    # The pieces stop where the curve reaches the saturation share.
    reached = float(curves.conversions(np.array([[1e12]]))[0, 0])
    assert reached == pytest.approx(saturation * top, rel=1e-12)


@pytest.mark.parametrize(
    ("pieces", "saturation"), [(1, 0.99), (3, 0.9), (8, 0.99), (16, 0.95), (64, 0.999)]
)
def test_chord_error_matches_a_dense_evaluation_of_the_true_curve(pieces, saturation):
    scale = 2500.0
    spend = saturating_breakpoints(scale, pieces, saturation)
    grid = np.linspace(0.0, spend[-1], 400_001)
    true = true_saturating(1.0, scale, grid)
    chord = np.interp(grid, spend, true_saturating(1.0, scale, spend))
    dense = float(np.max(true - chord))
    assert dense > 0
    assert saturating_chord_error(scale, spend) == pytest.approx(dense, rel=1e-6)

    cell = saturating("s", "c", max_conversions=30.0, scale=scale)
    curves = build_curves(one_cell(cell, pieces=pieces, saturation=saturation))
    assert curves.approximation.worst_cell == "s/c"
    assert curves.approximation.max_error_share == pytest.approx(dense, rel=1e-6)
    # The same gap, in conversions, on the pieces the program uses.
    values = np.array(
        [float(curves.conversions(np.array([[s]]))[0, 0]) for s in grid[::4000]]
    )
    gap = 30.0 * true_saturating(1.0, scale, grid[::4000]) - values
    assert gap.min() >= -1e-9
    assert gap.max() <= 30.0 * dense + 1e-9


def test_more_pieces_never_increase_the_chord_error():
    errors = [
        saturating_chord_error(1000.0, saturating_breakpoints(1000.0, n, 0.99))
        for n in (1, 2, 4, 8, 16, 32, 64)
    ]
    assert all(b < a for a, b in itertools.pairwise(errors))
    # A chord error falls with the square of the number of pieces.
    assert errors[-1] < errors[-2] / 3.5


# --- points -------------------------------------------------------------------


def test_points_are_chords_from_the_origin_whatever_the_row_order():
    cell = points_curve("s", "c")
    rows = [point("s", "c", 300.0, 16.0), point("s", "c", 100.0, 10.0)]
    curves = build_curves(one_cell(cell, points=rows))
    np.testing.assert_allclose(curves.width, [100.0, 200.0])
    np.testing.assert_allclose(curves.slope, [0.1, 0.03])


def test_points_that_are_not_concave_are_refused():
    rows = [
        point("s", "c", 10.0, 1.0),
        point("s", "c", 20.0, 5.0),
        point("s", "c", 30.0, 6.0),
    ]
    with pytest.raises(ValidationError, match="not concave"):
        one_cell(points_curve("s", "c"), points=rows)


def test_concave_hull_lifts_the_dent_and_warns_by_how_much():
    rows = [
        point("s", "c", 10.0, 1.0),
        point("s", "c", 20.0, 5.0),
        point("s", "c", 30.0, 6.0),
    ]
    sc = one_cell(points_curve("s", "c"), points=rows, concave_hull=True)
    with pytest.warns(CurveWarning, match=r"adds 1\.5 conversions"):
        curves = build_curves(sc)
    # Hull of (0,0), (20,5), (30,6): 2.5 at spend 10.
    np.testing.assert_allclose(curves.width, [10.0, 10.0, 10.0])
    np.testing.assert_allclose(curves.slope, [0.25, 0.25, 0.1])


# --- seasonality --------------------------------------------------------------


def test_seasonality_turns_f_into_v_times_f_of_s_over_k_v():
    v, k = 1.5, 1.2
    scale, top = 3000.0, 40.0
    sc = scenario(
        segments=[segment("s")],
        channels=[channel("lin"), channel("sat")],
        responses=[
            linear("s", "lin", cpc=4.0, conversion_rate=0.05, monthly_clicks=500),
            saturating("s", "sat", max_conversions=top, scale=scale),
        ],
        seasonality=[season("2027-02", volume=v, cost=k)],
        months=2,
        budget=1000.0,
    )
    curves = build_curves(sc)
    base = saturating_breakpoints(scale, 8, 0.99)
    chords = true_saturating(top, scale, base)

    def sat(s):
        return float(np.interp(s, base, chords))

    def lin(s):
        return 0.05 / 4.0 * min(s, 4.0 * 500)

    for s in (0.0, 250.0, 1999.0, 3600.0, 9000.0, 40_000.0):
        got = curves.conversions(np.full((2, 2), s))
        assert got[0, 0] == pytest.approx(lin(s), rel=1e-12, abs=1e-12)
        assert got[0, 1] == pytest.approx(v * lin(s / (k * v)), rel=1e-12, abs=1e-12)
        assert got[1, 0] == pytest.approx(sat(s), rel=1e-12, abs=1e-12)
        assert got[1, 1] == pytest.approx(v * sat(s / (k * v)), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(
        curves.capacity,
        [[2000.0, 2000.0 * k * v], [base[-1], base[-1] * k * v]],
        rtol=1e-12,
    )
    # A click costs k times as much.
    np.testing.assert_allclose(curves.clicks_per_money[0], [0.25, 0.25 / k])


def test_matching_seasonality_rows_multiply():
    sc = scenario(
        segments=[segment("s")],
        channels=[channel("a"), channel("b")],
        responses=[
            linear("s", "a", cpc=1.0, conversion_rate=0.1, monthly_clicks=100),
            linear("s", "b", cpc=1.0, conversion_rate=0.1, monthly_clicks=100),
        ],
        seasonality=[
            season("2027-01", volume=2.0, cost=1.5),
            season("2027-01", volume=0.5, cost=3.0, channel_id="a"),
            season("2027-01", volume=0.0, channel_id="b", segment_id="s"),
        ],
        budget=10.0,
    )
    curves = build_curves(sc)
    # a: v = 2 * 0.5 = 1, k = 1.5 * 3 = 4.5; b: v = 0, no room at all.
    np.testing.assert_allclose(curves.capacity, [[100 * 4.5], [0.0]])
    np.testing.assert_allclose(curves.slope, [0.1 / 4.5])


# --- conversions() and marginal() --------------------------------------------


def test_conversions_and_marginal_by_hand():
    sc = scenario(
        segments=[segment("s")],
        channels=[channel("lin"), channel("pts")],
        responses=[
            linear("s", "lin", cpc=2.0, conversion_rate=0.1, monthly_clicks=100),
            points_curve("s", "pts"),
        ],
        points=[point("s", "pts", 100.0, 10.0), point("s", "pts", 300.0, 16.0)],
        budget=10.0,
    )
    curves = build_curves(sc)

    def at(lin, pts):
        spend = np.array([[lin], [pts]])
        return curves.conversions(spend)[:, 0], curves.marginal(spend)[:, 0]

    # Linear: 0.05 conversions per unit up to 200; points: 0.1 to 100, 0.03 to 300.
    conversions, marginal = at(50.0, 50.0)
    np.testing.assert_allclose(conversions, [2.5, 5.0])
    np.testing.assert_allclose(marginal, [0.05, 0.1])
    conversions, marginal = at(200.0, 100.0)
    np.testing.assert_allclose(conversions, [10.0, 10.0])
    np.testing.assert_allclose(marginal, [0.0, 0.03])
    conversions, marginal = at(300.0, 200.0)
    np.testing.assert_allclose(conversions, [10.0, 13.0])
    np.testing.assert_allclose(marginal, [0.0, 0.03])
    conversions, marginal = at(0.0, 1000.0)
    np.testing.assert_allclose(conversions, [0.0, 16.0])
    np.testing.assert_allclose(marginal, [0.05, 0.0])


def test_seasonality_row_order_does_not_change_the_pieces():
    # Three rows match the same cell-month. Their product must not depend on
    # the order of the rows in the table: (1.1 * 1.3) * 0.7 and
    # (0.7 * 1.3) * 1.1 differ in the last bit.
    rows = [
        season("2027-01", volume=1.1),
        season("2027-01", volume=1.3, channel_id="c"),
        season("2027-01", volume=0.7, channel_id="c", segment_id="s"),
    ]
    cell = linear("s", "c", cpc=1.0, conversion_rate=0.1, monthly_clicks=1000)
    forward = build_curves(one_cell(cell, seasonality=rows))
    backward = build_curves(one_cell(cell, seasonality=rows[::-1]))
    assert forward.width[0] == pytest.approx(1000 * 1.1 * 1.3 * 0.7, rel=1e-15)
    np.testing.assert_array_equal(forward.width, backward.width)
    np.testing.assert_array_equal(forward.slope, backward.slope)
