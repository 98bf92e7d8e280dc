"""Telling people and monitoring: alerts sent through apprise, Prometheus metrics (issue 19).

The decisions are pure (``batchman.core.alerts``); this package holds the side effects: the
alert state file, the sending thread, the metrics file. ``Outputs.step`` is the one call the
daemon makes per iteration.
"""
