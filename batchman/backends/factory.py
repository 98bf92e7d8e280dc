"""Backends chosen by batchman.yaml (the only place that knows every backend's name)."""

from __future__ import annotations

import os

from .base import Runner


def make_batch(params, runner: Runner | None = None):
    kind = params["batch.backend"]
    runner = runner or Runner(timeout=params["batch.command_timeout"])
    if kind == "local":
        from .batch.local import LocalBatch
        return LocalBatch(os.path.join(params.path("daemon.temp_dir"), "attempts"), params["batch.local_slots"])
    if kind == "slurm":
        from .batch.slurm import SlurmBackend
        return SlurmBackend(runner, accounting=params["batch.slurm_accounting"])
    if kind == "gridengine":
        from .batch.gridengine import GridEngineBackend
        return GridEngineBackend(runner)
    if kind == "lsf":
        from .batch.lsf import LsfBackend
        return LsfBackend(runner)
    raise ValueError(f"unknown batch backend {kind!r}")


def make_staging(params, runner: Runner | None = None):
    kind = params["staging.backend"]
    runner = runner or Runner(timeout=params["batch.command_timeout"])
    if kind == "local":
        from .staging.local import LocalStaging
        return LocalStaging(params.path("staging.stub_dir"), params.path("staging.cache_dir"),
                            params["staging.local_delay"])
    if kind == "jcache":
        from .staging.jcache import JcacheStaging
        return JcacheStaging(runner, mss_root=params.path("staging.stub_dir"), cache_root=params.path("staging.cache_dir"))
    if kind == "command":
        raise ValueError("the command staging backend needs its templates (staging.request_cmd, ...): not configured yet")
    raise ValueError(f"unknown staging backend {kind!r}")
