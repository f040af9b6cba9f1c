"""A sparse response-time histogram on fixed log-spaced edges, with quantiles by interpolation.

Edges are 10^(k/16) seconds for k = 0..112: 1 s up to 10^7 s (about 116 days), 16 bins a decade,
so neighbouring edges differ by a factor of 1.155. Bin 0 holds [0, 1 s), bin i (1..112) holds
[edge[i-1], edge[i]), bin 113 holds everything from 10^7 s up. Fixed edges make histograms of any
two buckets add and subtract bin by bin, which is what hourly rollups and withdrawals need.

Quantiles follow Prometheus's `histogram_quantile`: the rank is q x count; find the bin where the
cumulative count reaches it; interpolate by the rank's fraction f of that bin's count. Unlike
Prometheus the interpolation is geometric, lo x (hi/lo)^f, since the bins are log-spaced (values
are assumed spread evenly in log space inside a bin); bin 0 is linear from 0 to 1 s; the open top
bin answers its lower edge. The error is at most one bin width (15.5 %), and a value is never
reported outside the bin that holds its rank.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping

BINS_PER_DECADE = 16
DECADES = 7
EDGES_S: tuple[float, ...] = tuple(
    10 ** (k / BINS_PER_DECADE) for k in range(BINS_PER_DECADE * DECADES + 1)
)
TOP_BIN = len(EDGES_S)


def bin_of(elapsed_s: float) -> int:
    """Index of the bin holding `elapsed_s` (negative values count as 0 s)."""
    return bisect_right(EDGES_S, max(0.0, elapsed_s))


def bin_bounds(index: int) -> tuple[float, float]:
    """[lo, hi) of a bin in seconds; the top bin's hi is its lo (it has no upper edge)."""
    if index <= 0:
        return 0.0, EDGES_S[0]
    if index >= TOP_BIN:
        return EDGES_S[-1], EDGES_S[-1]
    return EDGES_S[index - 1], EDGES_S[index]


def merge(into: dict[int, int], other: Mapping[int, int], sign: int = 1) -> None:
    """Add (or with sign=-1 subtract) `other`'s counts into `into`, dropping emptied bins."""
    for index, count in other.items():
        left = into.get(index, 0) + sign * count
        if left:
            into[index] = left
        else:
            into.pop(index, None)


def quantile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a histogram in seconds, or None when it is empty."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0
    for index in sorted(counts):
        count = counts[index]
        if count <= 0:
            continue
        if cumulative + count >= rank:
            fraction = (rank - cumulative) / count
            lo, hi = bin_bounds(index)
            if index == 0:
                return hi * fraction
            return min(hi, max(lo, lo * (hi / lo) ** fraction))  # rounding stays in the bin
        cumulative += count
    return bin_bounds(max(counts))[0]  # only reached through float rounding of the rank


def from_values(values: Iterable[float]) -> dict[int, int]:
    """A histogram of plain values (for tests and offline use)."""
    counts: dict[int, int] = {}
    for v in values:
        b = bin_of(v)
        counts[b] = counts.get(b, 0) + 1
    return counts
