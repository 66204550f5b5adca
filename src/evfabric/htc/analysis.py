"""How fresh the coordinator's status was, from the workers' true times and the coordinator's notes.

Every task makes two true *changes*: it starts (time from the worker) and it ends. The
coordinator *reflects* a start once it knows the task is running or finished, and an end once it
knows the task finished (:class:`~evfabric.htc.status.JobStatus` notes those moments). From the
two, at any instant ``t``:

* **staleness(t)**: the age of the oldest change that happened by ``t`` and is not yet reflected
  (0 when the status is exact): how old the coordinator's picture is at its worst point;
* **unseen(t)**: how many such changes there are;
* **time to an accurate status, tta(t)**: how long after ``t`` the status first reflects every
  change up to ``t``. For polling this is Nitro's JOB_STATUS_TIME (the next full round); for
  events, the time for the last worker's next message to arrive.

:func:`timeline` samples these over the run; :func:`summarise` gives medians and the *final*
figure: from the job's last true change to the moment the status was exactly final.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Timeline", "summarise", "timeline"]


@dataclass
class Timeline:
    """Samples at :attr:`times` (seconds since ``origin``)."""

    origin: float
    times: np.ndarray
    staleness: np.ndarray
    unseen: np.ndarray
    tta: np.ndarray
    job_start: float  # first true change, seconds since origin
    job_end: float  # last true change
    known_final: float  # when the status became exactly final (inf: never)


def _changes(truth_run: np.ndarray, truth_end: np.ndarray, learned_run: np.ndarray,
             learned_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    started = ~np.isnan(truth_run)
    ended = ~np.isnan(truth_end)
    times = np.concatenate([truth_run[started], truth_end[ended]])
    known = np.concatenate([np.minimum(learned_run, learned_end)[started], learned_end[ended]])
    order = np.argsort(times, kind="stable")
    return times[order], known[order]


def timeline(truth_run: np.ndarray, truth_end: np.ndarray, learned_run: np.ndarray, learned_end: np.ndarray,
             *, origin: float, until: float | None = None, samples: int = 600) -> Timeline:
    """Sample staleness, unseen changes and time-to-accurate-status from ``origin`` to ``until``.

    ``truth_*``: true start/end time of every task (NaN if it never happened); ``learned_*``: when
    the coordinator learned it (inf if never). Times are epoch seconds.
    """
    times, known = _changes(truth_run, truth_end, learned_run, learned_end)
    if times.size == 0:
        empty = np.zeros(0)
        return Timeline(origin, empty, empty, empty, empty, 0.0, 0.0, math.inf)
    job_end = float(times[-1])
    known_final = float(known.max())
    stop = until if until is not None else (known_final if math.isfinite(known_final) else job_end)
    stop = max(stop, job_end)
    ts = np.linspace(origin, stop, samples)
    reach = np.maximum.accumulate(known)
    idx = np.searchsorted(times, ts, side="right")
    staleness = np.zeros(samples)
    unseen = np.zeros(samples)
    tta = np.zeros(samples)
    for i, (t, n) in enumerate(zip(ts, idx)):
        if n == 0:
            continue
        pending = known[:n] > t
        count = int(pending.sum())
        if count:
            unseen[i] = count
            staleness[i] = t - times[int(np.argmax(pending))]
        tta[i] = max(0.0, reach[n - 1] - t)
    return Timeline(origin, ts - origin, staleness, unseen, tta, float(times[0]) - origin, job_end - origin,
                    known_final - origin)


def summarise(tl: Timeline) -> dict[str, float]:
    """Medians and tails over the running job (first to last true change), and the final figure."""
    if tl.times.size == 0:
        return {}
    during = (tl.times >= tl.job_start) & (tl.times <= tl.job_end)
    if not during.any():
        during = np.ones_like(tl.times, dtype=bool)
    st, tta = tl.staleness[during], tl.tta[during]
    return {
        "status_s": float(np.median(tta)),
        "status_p95_s": float(np.percentile(tta, 95)),
        "final_status_s": tl.known_final - tl.job_end,
        "staleness_median_s": float(np.median(st)),
        "staleness_p95_s": float(np.percentile(st, 95)),
        "staleness_max_s": float(st.max()),
        "unseen_median": float(np.median(tl.unseen[during])),
        "job_s": tl.job_end - tl.job_start,
    }
