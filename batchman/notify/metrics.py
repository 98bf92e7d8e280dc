"""Prometheus metrics of a production, as a text file for node_exporter's textfile collector.

Written every daemon iteration with the official client's exposition code
(``prometheus_client.write_to_textfile``: a temp file beside the target, then a rename, so
node_exporter never reads half a file). Every family carries an ``experiment`` label, so
several productions on one host can share the collector's directory (one file each).

Families (names per Prometheus conventions: units in the name, ``_total`` for counters):

  batchman_tasks{state,job}                         tasks by state and job definition
  batchman_attempts_total{failure_class}            ended attempts on record (class "none": succeeded)
  batchman_transitions_total                        state changes made by this daemon
  batchman_commands_total{system,command}           batch / staging commands run by this daemon
  batchman_command_failures_total{system,command}   ... that failed or timed out
  batchman_batch_unreachable                        1 while the batch system does not answer
  batchman_batch_query_backoff_seconds              how long until the batch system is asked again
  batchman_iterations_total, batchman_iteration_seconds, batchman_lock_held_seconds
  batchman_daemon_heartbeat_timestamp_seconds{daemon}
  batchman_alerts_active{condition}                 alert conditions in force
"""

from __future__ import annotations

import os
from collections import Counter

from batchman.core.alerts import ended_attempts
from batchman.core import states as S
from batchman.core.model import Status


class Totals:
    """The counters of this daemon process (Prometheus handles their reset on restart)."""

    def __init__(self):
        self.transitions = 0
        self.iterations = 0
        self.commands: Counter = Counter()       # (system, command) -> n
        self.failures: Counter = Counter()
        self._seen: dict[str, int] = {}          # system -> its command records already counted

    def add(self, engine, rep) -> None:
        self.iterations += 1
        self.transitions += len(rep.transitions)
        for system, backend in (("batch", engine.batch), ("staging", engine.staging)):
            recs = backend.command_records()
            start = self._seen.get(system, 0)
            for r in recs[start:]:
                cmd = os.path.basename(r.argv[0]) if r.argv else "?"
                self.commands[(system, cmd)] += 1
                if r.returncode != 0 or r.error:
                    self.failures[(system, cmd)] += 1
            self._seen[system] = len(recs)


def attempts_by_class(st: Status, ended: list[tuple[float, str]] | None = None) -> Counter:
    return Counter(c or "none" for _at, c in (ended if ended is not None else ended_attempts(st.tasks)))


def families(st: Status, experiment: str, totals: Totals, engine, rep, now: float, alerts=(),
             ended: list[tuple[float, str]] | None = None) -> list:
    """The metric families of one iteration (prometheus_client core types)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    e = [experiment]

    def gauge(name, doc, labels=(), rows=()):
        f = GaugeMetricFamily(name, doc, labels=["experiment", *labels])
        for values, v in rows:
            f.add_metric(e + list(values), v)
        return f

    def counter(name, doc, labels=(), rows=()):
        f = CounterMetricFamily(name, doc, labels=["experiment", *labels])
        for values, v in rows:
            f.add_metric(e + list(values), v)
        return f
    by = Counter(map(_state_job, st.tasks))
    jobs = sorted({j for _s, j in by}) or ["analysis"]
    backoff = max(0.0, engine.pacing.next_query - now) if engine.query_failures else 0.0
    return [
        gauge("batchman_tasks", "Tasks by state and job definition.", ("state", "job"),
              [((s, j), by[(s, j)]) for j in jobs for s in S.ALL]),
        counter("batchman_attempts", "Ended attempts on record by failure class (none: succeeded).",
                ("failure_class",), [((k,), v) for k, v in sorted(attempts_by_class(st, ended).items())]),
        counter("batchman_transitions", "Task state changes made by this daemon.", (), [((), totals.transitions)]),
        counter("batchman_commands", "Batch and staging commands run by this daemon.", ("system", "command"),
                sorted(totals.commands.items())),
        counter("batchman_command_failures", "Batch and staging commands that failed or timed out.",
                ("system", "command"), sorted((k, totals.failures[k]) for k in totals.commands)),
        gauge("batchman_batch_unreachable", "1 while the batch system does not answer.", (),
              [((), 1.0 if st.batch_unreachable_since is not None else 0.0)]),
        gauge("batchman_batch_query_backoff_seconds", "Seconds until the batch system is asked again after failures.",
              (), [((), backoff)]),
        counter("batchman_iterations", "Daemon iterations of this daemon.", (), [((), totals.iterations)]),
        gauge("batchman_iteration_seconds", "Wall time of the last daemon iteration.", (), [((), rep.seconds_total)]),
        gauge("batchman_lock_held_seconds", "Longest hold of the status file lock in the last iteration.", (),
              [((), rep.lock_max)]),
        gauge("batchman_daemon_heartbeat_timestamp_seconds", "Last heartbeat of each daemon (Unix time).",
              ("daemon",), [((d.id,), d.heartbeat) for d in st.daemons]),
        gauge("batchman_alerts_active", "Alert conditions in force (1 each).", ("condition",),
              [((k,), 1.0) for k in sorted(alerts)]),
    ]


def _state_job(t) -> tuple[str, str]:
    return t.state, t.job


class _Snapshot:
    def __init__(self, fams):
        self.fams = fams

    def collect(self):
        return iter(self.fams)


def write(path: str, fams: list) -> None:
    """Write the families atomically in the text exposition format."""
    from prometheus_client import CollectorRegistry, write_to_textfile
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Snapshot(fams))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_to_textfile(path, reg)
