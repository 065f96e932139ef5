"""Draft; replaced after measurement."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

NUM_MONTHS = 12
NUM_PIECES = 8
NUM_CHANNELS = 5


@dataclass(frozen=True)
class ArrayLP:
    c: NDArray[np.float64]
    upper: NDArray[np.float64]
    row_start: NDArray[np.int64]
    col_index: NDArray[np.integer]
    coef: NDArray[np.float64]
    row_lower: NDArray[np.float64]
    row_upper: NDArray[np.float64]

    @property
    def num_cols(self) -> int:
        return int(self.c.shape[0])

    @property
    def num_rows(self) -> int:
        return int(self.row_start.shape[0] - 1)


@dataclass(frozen=True)
class DirectResult:
    route: str
    objective: float
    x: NDArray[np.float64]
    seconds: float


def synthetic_lp(num_cols: int, seed: int = 0, rows: str = "few") -> ArrayLP:
    rng = np.random.default_rng(seed)
    per_cell = NUM_MONTHS * NUM_PIECES
    num_cells = -(-num_cols // per_cell)
    cell = np.arange(num_cols) // per_cell
    month = np.arange(num_cols) // NUM_PIECES % NUM_MONTHS
    channel = cell % NUM_CHANNELS

    channel_roi = rng.lognormal(0.0, 0.25, size=NUM_CHANNELS)
    cell_roi = rng.lognormal(0.35, 0.35, size=num_cells)
    phase = rng.uniform(0.0, NUM_MONTHS)
    season = 1.0 + 0.3 * np.sin(2 * np.pi * (np.arange(NUM_MONTHS) + phase) / 12)
    noise = rng.lognormal(0.0, 0.1, size=(num_cells, NUM_MONTHS))
    first = (cell_roi * channel_roi[np.arange(num_cells) % NUM_CHANNELS])[:, None]
    first = first * season * noise
    decay = rng.uniform(0.55, 0.92, size=(num_cells, NUM_MONTHS, NUM_PIECES))
    decay[:, :, 0] = 1.0
    roi = first[:, :, None] * np.cumprod(decay, axis=2)
    c = roi.reshape(-1)[:num_cols] - 1.0
    upper = rng.integers(50, 701, size=num_cols).astype(np.float64)
    budget = float(np.round(0.4 * upper.sum()))

    groups = [np.zeros(num_cols, dtype=np.int64)]
    lower = [budget]
    upper_rows = [budget]
    if rows == "few":
        groups += [channel, month]
        lower += [0.05 * budget] * NUM_CHANNELS + [-np.inf] * NUM_MONTHS
        upper_rows += [0.35 * budget] * NUM_CHANNELS + [0.12 * budget] * NUM_MONTHS
    elif rows != "budget":
        raise ValueError(f"rows must be 'few' or 'budget', got {rows!r}")

    starts = [np.zeros(1, dtype=np.int64)]
    index = []
    offset = 0
    for g in groups:
        order = np.argsort(g, kind="stable")
        counts = np.bincount(g)
        starts.append(offset + np.cumsum(counts))
        offset += num_cols
        index.append(order)
    row_start = np.concatenate(starts)
    col_index = np.concatenate(index).astype(np.int32)
    return ArrayLP(
        c=c,
        upper=upper,
        row_start=row_start,
        col_index=col_index,
        coef=np.ones(col_index.shape[0]),
        row_lower=np.asarray(lower, dtype=np.float64),
        row_upper=np.asarray(upper_rows, dtype=np.float64),
    )


def to_colwise(lp: ArrayLP):
    rows = np.repeat(np.arange(lp.num_rows, dtype=np.int32), np.diff(lp.row_start))
    order = np.argsort(lp.col_index, kind="stable")
    counts = np.bincount(lp.col_index, minlength=lp.num_cols)
    col_start = np.zeros(lp.num_cols + 1, dtype=np.int32)
    np.cumsum(counts, out=col_start[1:])
    return col_start, rows[order], lp.coef[order]
