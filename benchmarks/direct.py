"""The fastest exact direct routes to the optimum of one linear program.

The project solves its allocation LP through its own model layer; these routes
solve the same LP straight from numpy arrays, so a benchmark can tell how much
the project adds on top of the solver. Every route returns the same
:class:`DirectResult`, timed around the whole route: building the solver's
input from the arrays, the solve, and reading the solution back (for CBC also
writing the MPS file and starting the process).

The LP is::

    maximize    c @ x
    subject to  row_lower <= A @ x <= row_upper
                0 <= x <= upper

Routes:

- :func:`highs_direct` and :func:`highs_best`: highspy from the arrays.
- :func:`highs_shifted`: HiGHS dual simplex on ``c`` shifted by the budget's
  water level, exact when row 0 is ``sum(x) == B``; the fastest measured.
- :func:`cbc_mps`: a free MPS file, the CBC binary, its solution file.
- :func:`water_fill`: the closed-form optimum when the budget is the only row.

:func:`synthetic_lp` builds realistic test LPs of the project's shape.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cbcbox
import highspy
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CBC_BEST_ARGS",
    "HIGHS_BEST_OPTIONS",
    "ArrayLP",
    "DirectResult",
    "cbc_mps",
    "highs_best",
    "highs_direct",
    "highs_shifted",
    "read_cbc_solution",
    "synthetic_lp",
    "water_fill",
    "write_free_mps",
]

FloatArray = NDArray[np.float64]
OptionValue = bool | int | float | str

# Measured on synthetic_lp (18 rows) at 100k columns: dual simplex 2.5-4 s
# with or without presolve, IPX with presolve 1.5 s, IPX without it 0.5 s;
# at 10k columns all take about 0.03 s. IPX's crossover costs little and
# returns a basic, exact point; without it the objective is off by ~1e-8
# relative and rows are violated by ~4e-8. Starting crossover at a looser gap
# saves 1-3 IPM iterations. HiPO is not built into this highspy wheel, and
# PDLP is not exact.
HIGHS_BEST_OPTIONS: Mapping[str, OptionValue] = MappingProxyType(
    {
        "solver": "ipx",
        "presolve": "off",
        "run_crossover": "on",
        "start_crossover_tolerance": 1e-4,
    }
)

# Measured on synthetic_lp at 100k columns, whole route: Clp's dual simplex
# without presolve 0.35-0.55 s (the default -solve about the same), with
# presolve 0.5-0.65 s, primal simplex 0.75-1.2 s, barrier 0.9-1.4 s; reading
# the MPS file is most of it. cbc_mps adds "-precisionOutput %.17g" so the
# solution file carries every digit (the default "%15.8g" keeps 8).
CBC_BEST_ARGS: tuple[str, ...] = ("-presolve", "off", "-dualSimplex")

NUM_MONTHS = 12
NUM_PIECES = 8
NUM_CHANNELS = 5
CHANNEL_RETURNS = np.array([2.2, 1.4, 1.0, 0.7, 0.4])


@dataclass(frozen=True, eq=False)
class ArrayLP:
    """A bounded LP ``max c @ x, row_lower <= A x <= row_upper, 0 <= x <= upper``.

    Parameters
    ----------
    c : ndarray of float64, shape (n,)
        Objective coefficients, maximized.
    upper : ndarray of float64, shape (n,)
        Finite, positive column upper bounds; every lower bound is 0.
    row_start, col_index, coef : ndarray
        ``A`` in CSR form: row ``i`` holds ``coef[row_start[i]:row_start[i+1]]``
        at columns ``col_index[row_start[i]:row_start[i+1]]``.
    row_lower, row_upper : ndarray of float64, shape (m,)
        Row bounds; ``-inf`` or ``+inf`` for a missing side, equal for an
        equality row.
    """

    c: FloatArray
    upper: FloatArray
    row_start: NDArray[np.int64]
    col_index: NDArray[np.integer]
    coef: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray

    def __post_init__(self) -> None:
        problems = []
        if self.upper.shape != self.c.shape:
            problems.append(
                f"upper has shape {self.upper.shape} but c has {self.c.shape}"
            )
        if self.row_lower.shape != self.row_upper.shape:
            problems.append(
                f"row_lower has shape {self.row_lower.shape} but row_upper has "
                f"{self.row_upper.shape}"
            )
        if self.row_start.shape != (self.row_lower.shape[0] + 1,):
            problems.append(
                f"row_start has shape {self.row_start.shape}; expected "
                f"({self.row_lower.shape[0] + 1},), one more than the rows"
            )
        elif self.row_start[-1] != self.coef.shape[0]:
            problems.append(
                f"row_start ends at {self.row_start[-1]} but coef has "
                f"{self.coef.shape[0]} entries"
            )
        if self.col_index.shape != self.coef.shape:
            problems.append(
                f"col_index has shape {self.col_index.shape} but coef has "
                f"{self.coef.shape}"
            )
        elif self.col_index.size and not (
            self.col_index.min() >= 0 and self.col_index.max() < self.c.shape[0]
        ):
            problems.append(
                f"col_index spans {self.col_index.min()}..{self.col_index.max()}; "
                f"expected 0..{self.c.shape[0] - 1}"
            )
        for name in ("c", "upper", "coef"):
            values = getattr(self, name)
            if not np.isfinite(values).all():
                problems.append(f"{name} must be finite, got {_first_bad(values)}")
        if not (self.upper > 0).all():
            problems.append(f"upper must be > 0, got {self.upper.min()}")
        if problems:
            raise ValueError("invalid ArrayLP: " + "; ".join(problems))

    @property
    def num_cols(self) -> int:
        """Number of columns ``n``."""
        return int(self.c.shape[0])

    @property
    def num_rows(self) -> int:
        """Number of rows ``m``."""
        return int(self.row_start.shape[0] - 1)


def _first_bad(values: FloatArray) -> str:
    index = int(np.flatnonzero(~np.isfinite(values))[0])
    return f"{values[index]} at index {index}"


@dataclass(frozen=True, eq=False)
class DirectResult:
    """The optimum one route found.

    Attributes
    ----------
    route : str
        Which route produced it, e.g. ``"highs"`` or ``"cbc"``.
    objective : float
        ``c @ x``, computed here from the returned point.
    x : ndarray of float64
        The optimal point.
    seconds : float
        Wall-clock time of the whole route (``time.perf_counter``).
    """

    route: str
    objective: float
    x: FloatArray
    seconds: float


def highs_direct(lp: ArrayLP, **options: OptionValue) -> DirectResult:
    """Solve ``lp`` with highspy, passing the CSR arrays as they are.

    Parameters
    ----------
    lp : ArrayLP
        The LP.
    **options
        HiGHS options, set after ``output_flag=False``; for example
        ``solver="ipx", presolve="off"``.

    Returns
    -------
    DirectResult
        Route ``"highs"``.

    Raises
    ------
    ValueError
        If HiGHS refuses an option or the model.
    RuntimeError
        If the model status is not optimal.

    Notes
    -----
    The array form of ``Highs.passModel`` is used rather than filling a
    ``highspy.HighsLp``: assigning numpy arrays to the ``HighsLp`` matrix
    fields converts element by element (0.34 s at 1M columns against 3 ms).
    Row-wise and column-wise input solve equally fast, so the CSR arrays are
    passed unchanged.
    """
    start = time.perf_counter()
    x = _highs_solve(lp, lp.c, options)
    seconds = time.perf_counter() - start
    return DirectResult("highs", float(lp.c @ x), x, seconds)


def highs_best(lp: ArrayLP) -> DirectResult:
    """Solve ``lp`` with highspy and :data:`HIGHS_BEST_OPTIONS`.

    See :func:`highs_direct`.
    """
    return highs_direct(lp, **HIGHS_BEST_OPTIONS)


def highs_shifted(lp: ArrayLP, **options: OptionValue) -> DirectResult:
    """Solve ``lp`` with HiGHS dual simplex after shifting ``c`` by a constant.

    Row 0 must be an equality budget row, ``sum(x) == B`` over every column.
    On it, ``(c - level) @ x == c @ x - level * B`` for every feasible ``x``,
    so the shifted LP has the same optimal points. ``level`` is the return of
    the last column water-filling would buy (:func:`water_fill` on the budget
    alone). With all of ``c`` positive, HiGHS's dual simplex starts with every
    column at its upper bound, and its first iteration, flipping most of them
    back, took 2.5-7 s at 100k columns; from the shifted start it needs a few
    dozen cheap iterations.

    Parameters
    ----------
    lp : ArrayLP
        The LP, with row 0 as described.
    **options
        HiGHS options on top of ``presolve="off"`` (the default solver is dual
        simplex); see :func:`highs_direct`.

    Returns
    -------
    DirectResult
        Route ``"highs-shifted"``; the objective is ``c @ x`` with the
        original ``c``.

    Raises
    ------
    ValueError
        If row 0 is not an equality with coefficient 1 on every column.
    RuntimeError
        If the model status is not optimal.
    """
    start = time.perf_counter()
    budget = _budget_row(lp)
    _, filled = water_fill(lp.c, lp.upper, budget)
    bought = filled > 0
    level = float(lp.c[bought].min()) if bought.any() else 0.0
    x = _highs_solve(lp, lp.c - level, {"presolve": "off", **options})
    seconds = time.perf_counter() - start
    return DirectResult("highs-shifted", float(lp.c @ x), x, seconds)


def _budget_row(lp: ArrayLP) -> float:
    """The right-hand side of row 0, checked to be ``sum(x) == B``."""
    if lp.num_rows == 0:
        raise ValueError("row 0 must be sum(x) == budget; the LP has no rows")
    entries = slice(lp.row_start[0], lp.row_start[1])
    hits = np.bincount(lp.col_index[entries], minlength=lp.num_cols)
    if not (
        lp.row_lower[0] == lp.row_upper[0]
        and (hits == 1).all()
        and (lp.coef[entries] == 1.0).all()
    ):
        raise ValueError(
            "row 0 must be sum(x) == budget with coefficient 1 on all "
            f"{lp.num_cols} columns; it has {entries.stop - entries.start} "
            f"entries and bounds [{lp.row_lower[0]}, {lp.row_upper[0]}]"
        )
    return float(lp.row_upper[0])


def _highs_solve(
    lp: ArrayLP, cost: FloatArray, options: Mapping[str, OptionValue]
) -> FloatArray:
    """Maximize ``cost @ x`` over the rows and bounds of ``lp``; the optimal x."""
    if lp.coef.shape[0] > np.iinfo(np.int32).max:
        raise ValueError(
            f"HiGHS indexes with int32; the matrix has {lp.coef.shape[0]} entries"
        )
    highs = _silent_highs()
    for name, value in options.items():
        if highs.setOptionValue(name, value) == highspy.HighsStatus.kError:
            raise ValueError(f"HiGHS refused option {name}={value!r}")

    status = highs.passModel(
        lp.num_cols,
        lp.num_rows,
        lp.coef.shape[0],
        highspy.MatrixFormat.kRowwise.value,
        highspy.ObjSense.kMaximize.value,
        0.0,
        cost,
        np.zeros(lp.num_cols),
        lp.upper,
        lp.row_lower,
        lp.row_upper,
        lp.row_start.astype(np.int32),
        lp.col_index.astype(np.int32, copy=False),
        lp.coef,
        # An empty integrality array is read past its end; zeros mean
        # "continuous" for every column.
        np.zeros(lp.num_cols, dtype=np.int32),
    )
    if status == highspy.HighsStatus.kError:
        raise ValueError("HiGHS refused the model (passModel returned kError)")

    highs.run()
    model_status = highs.getModelStatus()
    if model_status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(
            f"HiGHS finished with {highs.modelStatusToString(model_status)!r}, "
            f"not Optimal, with options {dict(options)}"
        )
    return np.array(highs.getSolution().col_value)


def _silent_highs() -> highspy.Highs:
    """A HiGHS instance that prints nothing, not even its banner.

    ``highspy.Highs()`` prints the banner in its constructor, before
    ``output_flag`` can be turned off (ERGO-Code/HiGHS#1702); the extension's
    base class does not.
    """
    base = getattr(getattr(highspy, "_core", None), "_Highs", highspy.Highs)
    highs = base()
    highs.setOptionValue("output_flag", False)
    return highs


def cbc_mps(
    lp: ArrayLP, workdir: str | Path, *, cbc_args: Sequence[str] = CBC_BEST_ARGS
) -> DirectResult:
    """Solve ``lp`` with the CBC binary through a free MPS file.

    Parameters
    ----------
    lp : ArrayLP
        The LP.
    workdir : str or Path
        Existing directory for ``model.mps`` and ``solution.txt``; both are
        overwritten.
    cbc_args : sequence of str, keyword-only
        CBC commands between reading the model and writing the solution.

    Returns
    -------
    DirectResult
        Route ``"cbc"``; the objective is ``c @ x`` of the parsed point.

    Raises
    ------
    RuntimeError
        If CBC fails or its solution file does not say Optimal.
    """
    start = time.perf_counter()
    workdir = Path(workdir)
    model = workdir / "model.mps"
    solution = workdir / "solution.txt"
    write_free_mps(lp, model)
    # CBC appends to an existing solution file instead of replacing it.
    solution.unlink(missing_ok=True)

    command = [
        cbcbox.cbc_bin_path(),
        str(model),
        *cbc_args,
        "-precisionOutput",
        "%.17g",
        "-solution",
        str(solution),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0 or not solution.exists():
        raise RuntimeError(
            f"CBC exited with code {run.returncode} and wrote no solution for "
            f"{model}; last output: {run.stdout[-500:]}{run.stderr[-500:]}"
        )

    status, x = read_cbc_solution(solution, lp.num_cols)
    if not status.startswith("Optimal"):
        raise RuntimeError(f"CBC status is {status!r}, not Optimal, for {model}")
    seconds = time.perf_counter() - start
    return DirectResult("cbc", float(lp.c @ x), x, seconds)


def read_cbc_solution(path: str | Path, num_cols: int) -> tuple[str, FloatArray]:
    """Read a CBC ``-solution`` file into its status line and column values.

    The file is a status line (``Optimal - objective value -123.4``) and one
    line ``index name value reduced_cost`` per column CBC prints; with the
    default ``printingOptions normal`` those are the nonzero columns, so a
    column missing from the file is 0. CBC prefixes a line with ``**`` when
    the value breaks a bound; the marker is dropped.

    Parameters
    ----------
    path : str or Path
        The solution file.
    num_cols : int
        Number of columns of the model.

    Returns
    -------
    status : str
        The first line, stripped.
    x : ndarray of float64, shape (num_cols,)
        Column values.
    """
    text = Path(path).read_text()
    status, _, body = text.partition("\n")
    fields = body.replace("**", " ").split()
    if len(fields) % 4:
        raise RuntimeError(
            f"{path} has {len(fields)} fields after the status line; expected "
            "4 per line: index name value reduced_cost"
        )
    x = np.zeros(num_cols)
    x[np.array(fields[0::4], dtype=np.int64)] = np.array(fields[2::4], dtype=float)
    return status.strip(), x


def water_fill(
    c: ArrayLike, upper: ArrayLike, budget: float, exact: bool = True
) -> tuple[float, FloatArray]:
    """Exact optimum of ``max c @ x, sum(x) == budget, 0 <= x <= upper``.

    Columns are filled to their upper bound in order of ``c`` descending,
    ties by index, until the budget runs out; the last one may be partial.

    Parameters
    ----------
    c, upper : array_like of float, shape (n,)
        Objective coefficients and upper bounds (lower bounds are 0).
    budget : float
        Right-hand side of the only row.
    exact : bool
        If True the row is ``sum(x) == budget`` and every column may be
        bought; if False it is ``sum(x) <= budget`` and columns with
        ``c <= 0`` are never bought.

    Returns
    -------
    objective : float
        ``c @ x``.
    x : ndarray of float64, shape (n,)
        The optimal point.

    Raises
    ------
    ValueError
        If the budget is negative, or larger than the total upper bound when
        ``exact`` is True.
    """
    c = np.asarray(c, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")

    order = np.argsort(-c, kind="stable")
    if not exact:
        order = order[c[order] > 0]
    filled = np.cumsum(upper[order])
    capacity = float(filled[-1]) if filled.size else 0.0
    if exact and budget > capacity:
        raise ValueError(
            f"budget {budget} exceeds the total upper bound {capacity}; "
            "sum(x) == budget is infeasible (use exact=False for <=)"
        )

    whole = int(np.searchsorted(filled, budget, side="right"))
    x = np.zeros_like(c)
    x[order[:whole]] = upper[order[:whole]]
    if whole < order.size:
        rest = budget - (filled[whole - 1] if whole else 0.0)
        x[order[whole]] = min(rest, upper[order[whole]])
    return float(c @ x), x


def synthetic_lp(num_cols: int, seed: int = 0, rows: str = "few") -> ArrayLP:
    """A realistic allocation LP: cells x 12 months x 8 curve pieces.

    Column ``j`` is piece ``j % 8`` of month ``j // 8 % 12`` of cell
    ``j // 96``; the last cell is cut short when ``num_cols`` is not a
    multiple of 96. Objective coefficients are marginal returns per unit of
    spend (all positive, as value times conversions per unit in the project),
    falling along the pieces of a cell-month, so each curve is concave. Piece
    widths are whole numbers from 50 to 700. The budget ``B`` is 40% of the
    total width, rounded. Channels and seasons differ enough that some channel
    and month rows bind at the optimum.

    Parameters
    ----------
    num_cols : int
        Number of columns; at least 480 (five cells) for ``rows="few"``.
    seed : int
        Seed of ``numpy.random.default_rng``; the LP is deterministic for it.
    rows : {"few", "budget"}
        ``"budget"``: the single row ``sum(x) == B``. ``"few"``: also one row
        per channel (cell ``k`` is in channel ``k % 5``) with its sum between
        5% and 35% of ``B``, and one row per month with its sum at most 12% of
        ``B``: 18 rows.

    Returns
    -------
    ArrayLP
    """
    if rows not in ("few", "budget"):
        raise ValueError(f"rows must be 'few' or 'budget', got {rows!r}")
    min_cols = NUM_CHANNELS * NUM_MONTHS * NUM_PIECES if rows == "few" else 1
    if num_cols < min_cols:
        raise ValueError(
            f"num_cols must be >= {min_cols} for rows={rows!r} (with 'few', "
            f"every channel needs a whole cell), got {num_cols}"
        )

    rng = np.random.default_rng(seed)
    column = np.arange(num_cols)
    cell = column // (NUM_MONTHS * NUM_PIECES)
    month = column // NUM_PIECES % NUM_MONTHS
    c = _marginal_returns(rng, int(cell[-1]) + 1)[:num_cols]
    upper = rng.integers(50, 701, size=num_cols).astype(np.float64)
    budget = float(np.round(0.4 * upper.sum()))

    groups = [np.zeros(num_cols, dtype=np.int64)]
    row_lower = [budget]
    row_upper = [budget]
    if rows == "few":
        groups += [cell % NUM_CHANNELS, month]
        row_lower += [0.05 * budget] * NUM_CHANNELS + [-np.inf] * NUM_MONTHS
        row_upper += [0.35 * budget] * NUM_CHANNELS + [0.12 * budget] * NUM_MONTHS

    # Each group splits the columns into rows; a stable sort lists each row's
    # columns in increasing order.
    sizes = np.concatenate([np.bincount(group) for group in groups])
    row_start = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=row_start[1:])
    col_index = np.concatenate(
        [np.argsort(group, kind="stable") for group in groups]
    ).astype(np.int32)
    return ArrayLP(
        c=c,
        upper=upper,
        row_start=row_start,
        col_index=col_index,
        coef=np.ones(col_index.shape[0]),
        row_lower=np.array(row_lower),
        row_upper=np.array(row_upper),
    )


def _marginal_returns(rng: np.random.Generator, num_cells: int) -> FloatArray:
    """Marginal return per unit of spend, flattened cell-major, month, piece."""
    channel_return = rng.permutation(CHANNEL_RETURNS)
    channel_return *= rng.lognormal(0.0, 0.1, size=NUM_CHANNELS)
    cell_return = rng.lognormal(0.8, 0.3, size=num_cells)
    cell_return *= channel_return[np.arange(num_cells) % NUM_CHANNELS]
    peak = rng.uniform(0.0, NUM_MONTHS)
    months = np.arange(NUM_MONTHS)
    season = 1.0 + 0.6 * np.cos(2 * np.pi * (months - peak) / NUM_MONTHS)
    noise = rng.lognormal(0.0, 0.1, size=(num_cells, NUM_MONTHS))
    first_piece = cell_return[:, None] * season * noise

    # Each piece returns 60-90% of the one before it.
    decay = rng.uniform(0.6, 0.9, size=(num_cells, NUM_MONTHS, NUM_PIECES))
    decay[:, :, 0] = 1.0
    marginal_return = first_piece[:, :, None] * np.cumprod(decay, axis=2)
    return marginal_return.reshape(-1)


# ---------------------------------------------------------------------------
# Free MPS writing, vectorised. A line is a row of 32-bit words of up to four
# characters each; NUL bytes pad the fields and are dropped at the end, which
# leaves single-space separated fields. Numbers are exact: integers as
# integers, others as 17 correctly rounded significant digits, which read back
# to the same double.

_WORD = np.dtype("<u4")
_CHUNK_LINES = 1 << 18
_POW10_EXACT = np.power(10.0, np.arange(23), dtype=np.float64)  # exact to 1e22
_POW10000 = 10_000 ** np.arange(5, dtype=np.int64)
_DEKKER_SPLIT = 134217729.0  # 2**27 + 1


def _word(text: bytes) -> np.uint32:
    """Up to four characters as one little-endian word, NUL-padded."""
    return np.uint32(int.from_bytes(text.ljust(4, b"\0"), "little"))


def _quad_words() -> tuple[NDArray[np.uint32], ...]:
    """Words for 0 to 9999: all four digits, without leading zeros (keeping a
    last digit), and without trailing zeros."""
    chars = np.arange(ord("0"), ord("9") + 1, dtype=np.uint8)
    full = np.stack(np.meshgrid(*[chars] * 4, indexing="ij"), axis=-1)
    full = full.reshape(10_000, 4)
    value = np.arange(10_000)
    places = np.arange(4)

    lead = full.copy()
    length = np.searchsorted(10 ** np.arange(4), value, side="right")
    lead[places < 4 - np.maximum(length, 1)[:, None]] = 0
    trail = full.copy()
    zeros = sum(value % 10**k == 0 for k in range(1, 5))
    trail[places >= 4 - zeros[:, None]] = 0
    return tuple(t.view(_WORD).ravel() for t in (full, lead, trail))


_FULL, _LEAD, _TRAIL = _quad_words()


def write_free_mps(lp: ArrayLP, path: str | Path) -> None:
    """Write ``lp`` as a free MPS file that minimizes ``-c @ x``.

    Columns are named ``C<j>``, rows ``R<i>``; rows with no finite bound are
    left out. Numbers keep their exact double value.

    Parameters
    ----------
    lp : ArrayLP
        The LP.
    path : str or Path
        File to (over)write.
    """
    kept = np.isfinite(lp.row_lower) | np.isfinite(lp.row_upper)
    col_names = _name_words(b"C", np.arange(lp.num_cols))
    with open(path, "wb") as out:
        out.write(b"NAME DIRECT\nROWS\n N OBJ\n")
        out.write(_rows_section(lp, kept))
        out.write(b"COLUMNS\n")
        for chunk in _columns_section(lp, kept, col_names):
            out.write(chunk)
        out.write(b"RHS\n")
        out.write(_rhs_sections(lp, kept))
        out.write(b"BOUNDS\n")
        for first in range(0, lp.num_cols, _CHUNK_LINES):
            part = slice(first, first + _CHUNK_LINES)
            bound = _number_words(lp.upper[part])
            out.write(_lines(b" UP BND", col_names[part], bound))
        out.write(b"ENDATA\n")


def _rows_section(lp: ArrayLP, kept: NDArray[np.bool_]) -> bytes:
    rows = np.flatnonzero(kept)
    lower, upper = lp.row_lower[rows], lp.row_upper[rows]
    sense = np.where(
        lower == upper,
        _word(b" E"),
        np.where(np.isfinite(upper), _word(b" L"), _word(b" G")),
    )
    return _lines(sense[:, None], _name_words(b"R", rows)).tobytes()


def _columns_section(
    lp: ArrayLP, kept: NDArray[np.bool_], col_names: NDArray[np.uint32]
) -> Iterator[NDArray[np.uint8]]:
    # Column-major entries, each column's objective entry first; the objective
    # takes row index num_rows in the table of row names.
    row_of_entry = np.repeat(np.arange(lp.num_rows), np.diff(lp.row_start))
    keep = kept[row_of_entry]
    cols = lp.col_index[keep]
    order = np.argsort(cols, kind="stable")
    counts = np.bincount(cols, minlength=lp.num_cols) + 1

    line_col = np.repeat(np.arange(lp.num_cols), counts)
    first_line = np.zeros(lp.num_cols, dtype=np.int64)
    np.cumsum(counts[:-1], out=first_line[1:])
    is_entry = np.ones(line_col.shape[0], dtype=bool)
    is_entry[first_line] = False
    line_row = np.full(line_col.shape[0], lp.num_rows)
    line_row[is_entry] = row_of_entry[keep][order]
    line_value = np.empty(line_col.shape[0])
    line_value[first_line] = -lp.c
    line_value[is_entry] = lp.coef[keep][order]

    row_names = _name_words(b"R", np.arange(lp.num_rows + 1))
    row_names[-1] = 0
    row_names[-1, 0] = _word(b" OBJ")
    for first in range(0, line_col.shape[0], _CHUNK_LINES):
        part = slice(first, first + _CHUNK_LINES)
        yield _lines(
            col_names[line_col[part]],
            row_names[line_row[part]],
            _number_words(line_value[part]),
        )


def _rhs_sections(lp: ArrayLP, kept: NDArray[np.bool_]) -> bytes:
    lower, upper = lp.row_lower, lp.row_upper
    rows = np.flatnonzero(kept)
    rhs = np.where(np.isfinite(upper), upper, lower)[rows]
    text = _lines(b" RHS", _name_words(b"R", rows), _number_words(rhs)).tobytes()

    ranged = rows[np.isfinite(lower[rows]) & np.isfinite(upper[rows])]
    ranged = ranged[lower[ranged] != upper[ranged]]
    if ranged.size:
        width = _number_words(upper[ranged] - lower[ranged])
        lines = _lines(b" RNG", _name_words(b"R", ranged), width)
        text += b"RANGES\n" + lines.tobytes()
    return text


def _lines(*fields: bytes | NDArray[np.uint32]) -> NDArray[np.uint8]:
    """MPS lines, as bytes, from per-line word tables and constant text.

    Each field brings its own leading space; a newline ends every line.
    """
    count = max(f.shape[0] for f in fields if isinstance(f, np.ndarray))
    tables = [_text_words(f, count) if isinstance(f, bytes) else f for f in fields]
    tables.append(_text_words(b"\n", count))
    table = np.ascontiguousarray(np.concatenate(tables, axis=1))
    flat = table.view(np.uint8).ravel()
    return flat[flat != 0]


def _text_words(text: bytes, count: int) -> NDArray[np.uint32]:
    """The same text on ``count`` lines, as a read-only word table."""
    padded = text.ljust(-(-len(text) // 4) * 4, b"\0")
    words = np.frombuffer(padded, dtype=_WORD)
    return np.broadcast_to(words, (count, words.shape[0]))


def _name_words(prefix: bytes, numbers: NDArray[np.integer]) -> NDArray[np.uint32]:
    """`` <prefix><number>`` for each number."""
    largest = int(numbers.max()) if numbers.size else 0
    groups = -(-len(str(largest)) // 4)
    words = np.empty((numbers.shape[0], 1 + groups), dtype=_WORD)
    words[:, 0] = _word(b" " + prefix)
    words[:, 1:] = _integer_words(numbers.astype(np.int64), groups)
    return words


def _integer_words(values: NDArray[np.int64], groups: int) -> NDArray[np.uint32]:
    """Non-negative integers, right-aligned in ``groups`` words of 4 digits."""
    length = np.maximum(np.searchsorted(_POW10000, values, side="right"), 1)
    first = groups - length
    words = np.empty((values.shape[0], groups), dtype=_WORD)
    rest = values
    for group in range(groups - 1, -1, -1):
        rest, quad = np.divmod(rest, 10_000)
        inner = np.where(group == first, _LEAD[quad], 0)
        words[:, group] = np.where(group > first, _FULL[quad], inner)
    return words


def _number_words(values: FloatArray) -> NDArray[np.uint32]:
    """`` <value>``: ``-123`` or ``-1.25e-7``, exactly, in up to 7 words."""
    size = np.abs(values)
    is_whole = (size < 2.0**53) & (size == np.floor(size))
    whole = np.flatnonzero(is_whole)
    other = np.flatnonzero(~is_whole)

    integers = size[whole].astype(np.int64)
    largest = integers.max(initial=0)
    groups = max(int(np.searchsorted(_POW10000, largest, side="right")), 1)
    words = np.zeros((values.shape[0], 7 if other.size else 1 + groups), _WORD)
    words[whole, 1 : 1 + groups] = _integer_words(integers, groups)
    if other.size:
        words[other] = _scientific_words(size[other])
    words[:, 0] |= np.where(values < 0, _word(b" -"), _word(b" "))
    return words


def _scientific_words(size: FloatArray) -> NDArray[np.uint32]:
    """Positive doubles as ``d.dddde-x``, up to 17 digits, in 7 words.

    The first word holds the first digit and the point in its upper bytes,
    leaving the lower two for the separator and the sign.
    """
    mantissa, exponent = _decimal17(size)
    first_digit, fraction = np.divmod(mantissa, 10**16)
    quads: list[NDArray[np.int64]] = []
    for _ in range(4):
        fraction, quad = np.divmod(fraction, 10_000)
        quads.insert(0, quad)
    last = np.zeros(size.shape[0], dtype=np.int64)
    for group, quad in enumerate(quads, start=1):
        last[quad != 0] = group

    words = np.empty((size.shape[0], 7), dtype=_WORD)
    point = np.where(last > 0, _word(b"\0\0\0."), 0)
    words[:, 0] = ((first_digit + ord("0")) << 16).astype(_WORD) | point
    for group, quad in enumerate(quads, start=1):
        inner = np.where(group == last, _TRAIL[quad], 0)
        words[:, group] = np.where(group < last, _FULL[quad], inner)
    words[:, 5] = np.where(exponent < 0, _word(b"e-"), _word(b"e"))
    words[:, 6] = _LEAD[np.abs(exponent)]
    return words


def _decimal17(size: FloatArray) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Positive doubles as ``mantissa * 10**(exponent - 16)``, correctly rounded.

    ``mantissa`` has 17 digits. It is the integer nearest to
    ``size * 10**(16 - exponent)``, computed from the product and its exact
    rounding error (Dekker's two-product), so no digit is lost. Values whose
    scale factor is not an exact double (below 1e-6 or from 1e17) fall back
    to Python's correctly rounded formatting.
    """
    exponent = np.floor(np.log10(size)).astype(np.int64)
    mantissa = np.zeros(size.shape[0], dtype=np.int64)
    todo = np.flatnonzero((exponent >= -6) & (exponent <= 16))
    # log10 can land one off next to a power of ten: retry those one over.
    for _ in range(3):
        scale = _POW10_EXACT[16 - exponent[todo]]
        mantissa[todo] = _nearest_scaled(size[todo], scale)
        high = mantissa[todo] >= 10**17
        low = mantissa[todo] < 10**16
        exponent[todo[high]] += 1
        exponent[todo[low]] -= 1
        todo = todo[high | low]
        todo = todo[(exponent[todo] >= -6) & (exponent[todo] <= 16)]

    slow = np.flatnonzero((mantissa < 10**16) | (mantissa >= 10**17))
    for i in slow:
        digits, _, power = f"{size[i]:.16e}".partition("e")
        mantissa[i] = int(digits.replace(".", ""))
        exponent[i] = int(power)
    return mantissa, exponent


def _nearest_scaled(size: FloatArray, scale: FloatArray) -> NDArray[np.int64]:
    """The integer nearest to the exact product ``size * scale``."""
    product = size * scale
    size_hi, size_lo = _split(size)
    scale_hi, scale_lo = _split(scale)
    error = (
        (size_hi * scale_hi - product) + size_hi * scale_lo + size_lo * scale_hi
    ) + size_lo * scale_lo
    nearest = np.rint(product)
    return nearest.astype(np.int64) + np.rint(product - nearest + error).astype(
        np.int64
    )


def _split(value: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Dekker's split of doubles into two 26-bit halves."""
    scaled = _DEKKER_SPLIT * value
    high = scaled - (scaled - value)
    return high, value - high
