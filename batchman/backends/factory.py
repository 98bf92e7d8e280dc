"""Backends chosen by batchman.yaml (the only place that knows every backend's name)."""

from __future__ import annotations

import os

from batchman.backends.base import Runner


def make_batch(params, runner: Runner | None = None):
    kind = params["batch.backend"]
    runner = runner or Runner(timeout=params["batch.command_timeout"])
    if kind == "local":
        from batchman.backends.batch.local import LocalBatch
        return LocalBatch(os.path.join(params.path("daemon.temp_dir"), "attempts"), params["batch.local_slots"])
    if kind == "slurm":
        from batchman.backends.batch.slurm import SlurmBackend
        return SlurmBackend(runner, accounting=params["batch.slurm_accounting"])
    if kind == "gridengine":
        from batchman.backends.batch.gridengine import GridEngineBackend
        return GridEngineBackend(runner)
    if kind == "lsf":
        from batchman.backends.batch.lsf import LsfBackend
        return LsfBackend(runner)
    raise ValueError(f"unknown batch backend {kind!r}")


def make_staging(params, runner: Runner | None = None):
    kind = params["staging.backend"]
    runner = runner or Runner(timeout=params["staging.command_timeout"])
    if kind == "local":
        from batchman.backends.staging.local import LocalStaging
        return LocalStaging(params.path("staging.stub_dir"), params.path("staging.cache_dir"),
                            params["staging.local_delay"])
    if kind == "jcache":
        import shlex
        from batchman.backends.staging.jcache import JcacheStaging
        cmd = {k: shlex.split(params[f"staging.jcache_{k}_cmd"]) for k in ("get", "pending", "release", "cancel", "status")}
        return JcacheStaging(runner, user=params["staging.user"] or None,
                             mss_root=params.path("staging.stub_dir"), cache_root=params.path("staging.cache_dir"),
                             get_cmd=cmd["get"], pending_cmd=cmd["pending"], release_cmd=cmd["release"],
                             cancel_cmd=cmd["cancel"], status_cmd=cmd["status"],
                             max_files=params["staging.chunk_size"], timeout=params["staging.command_timeout"],
                             ids_file=os.path.join(params.path("daemon.temp_dir"), "jcache-requests.json"))
    if kind == "command":
        from batchman.backends.staging.command import CommandStaging
        return CommandStaging(runner, request_cmd=params["staging.request_cmd"], query_cmd=params["staging.query_cmd"],
                              present_cmd=params["staging.present_cmd"] or None,
                              release_cmd=params["staging.release_cmd"] or None,
                              cancel_cmd=params["staging.cancel_cmd"] or None,
                              parser=params["staging.query_format"], cache_dir=params.path("staging.cache_dir") or None,
                              stub_root=params.path("staging.stub_dir") or None,
                              timeout=params["staging.command_timeout"], max_files=params["staging.chunk_size"],
                              user=params["staging.user"] or None)
    if kind == "tape-rest":
        from batchman.backends.staging.taperest import TapeRestStaging
        return TapeRestStaging(params["staging.tape_rest_url"], stub_root=params.path("staging.stub_dir"),
                               cache_root=params.path("staging.cache_dir"), path_prefix=params["staging.remote_prefix"],
                               token_file=params.path("staging.token_file"), ca_dir=params.path("staging.ca_dir"),
                               cert=params.path("staging.x509_proxy"), timeout=params["staging.command_timeout"],
                               ids_file=os.path.join(params.path("daemon.temp_dir"), "taperest-requests.json"))
    if kind == "xrootd":
        from batchman.backends.staging.xrootd import XrootdStaging
        return XrootdStaging(runner, params["staging.xrootd_url"], stub_root=params.path("staging.stub_dir"),
                             cache_root=params.path("staging.cache_dir"), path_prefix=params["staging.remote_prefix"],
                             xrdfs=params["staging.xrdfs_cmd"], max_files=params["staging.chunk_size"],
                             timeout=params["staging.command_timeout"],
                             ids_file=os.path.join(params.path("daemon.temp_dir"), "xrootd-requests.json"))
    raise ValueError(f"unknown staging backend {kind!r}")
