#!/usr/bin/env python3
"""bench_daemon.py with its clock switched to this process's CPU time.

On a machine shared with other work the wall-clock figures of bench_daemon.py vary several
fold from run to run (the process waits for a core); CPU seconds do not, so this is the
one to compare two versions with. Same options and columns as bench_daemon.py:

    python benchmarks/bench_daemon_cpu.py [--sizes 1000,10000]
"""

import os
import runpy
import time

time.perf_counter = time.process_time      # every timing in batchman and in the benchmark
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_daemon.py"), run_name="__main__")
