"""The pure core: states, the task model, decisions, retry rules, job definitions, run specs.

Nothing here runs a command, touches a file or reads the clock: every function is handed what it
needs (observations, parameters, ``now``). The core imports nothing of batchman outside ``core``
and no library but msgspec (``tests/test_layers.py`` keeps it so).
"""
