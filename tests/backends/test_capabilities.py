"""The backend contract (backends/base.py): every backend derives from the base class of its
kind, satisfies the Protocol, declares its optional capabilities, and implements exactly the
ones it declares; a submission's outcome is a value (Submitted / Refused / Unreachable)."""

import pytest

from batchman.backends import base as B
from batchman.backends.batch.gridengine import GridEngineBackend
from batchman.backends.batch.local import LocalBatch
from batchman.backends.batch.lsf import LsfBackend
from batchman.backends.batch.slurm import SlurmBackend
from batchman.backends.staging.command import CommandStaging
from batchman.backends.staging.jcache import JcacheStaging
from batchman.backends.staging.local import LocalStaging

BATCH = [LocalBatch, SlurmBackend, GridEngineBackend, LsfBackend]
STAGING = [LocalStaging, JcacheStaging, CommandStaging]
# capability -> the methods that carry it
METHODS = {"time_limits": ["time_limits"], "failure_hints": ["failure_hint"],
           "listing_reuse": ["reuse_listing", "listing_fresh"],
           "arrays": ["max_array_size", "submit_array", "element_id", "element_index"]}


@pytest.mark.parametrize("cls", BATCH, ids=lambda c: c.name)
def test_every_batch_backend_declares_what_it_implements(cls):
    assert issubclass(cls, B.BatchBase) and isinstance(cls.capabilities, B.Capabilities)
    for cap, methods in METHODS.items():
        own = [m for m in methods if getattr(cls, m) is not getattr(B.BatchBase, m)]
        if getattr(cls.capabilities, cap):
            assert own == methods, f"{cls.name} declares {cap} but does not implement {methods}"
            if cap == "arrays":
                assert isinstance(cls.array_form, B.ArrayForm), f"{cls.name} has arrays but no array_form"
        else:
            assert own == [], f"{cls.name} implements {own} without declaring {cap}"


@pytest.mark.parametrize("cls", STAGING, ids=lambda c: c.name)
def test_every_staging_backend_declares_its_capabilities(cls):
    assert issubclass(cls, B.StagingBase) and isinstance(cls.capabilities, B.Capabilities)


def test_backends_satisfy_the_protocols(tmp_path):
    runner = B.Runner()
    batch = [LocalBatch(str(tmp_path)), SlurmBackend(runner), GridEngineBackend(runner), LsfBackend(runner)]
    assert all(isinstance(b, B.BatchBackend) for b in batch)
    assert isinstance(LocalStaging(str(tmp_path), str(tmp_path)), B.StagingBackend)


def test_the_command_log_is_the_runners_record():
    runner = B.Runner()
    b = SlurmBackend(runner)
    assert b.capabilities.command_log and b.command_records() is runner.records
    assert LocalBatch("/nonexistent").command_records() == []


def test_only_slurm_and_local_read_failure_hints_from_stderr():
    text = "slurmstepd: error: Exceeded job memory limit at some point."
    assert SlurmBackend(B.Runner()).failure_hint(text) == "out-of-memory"
    assert LocalBatch("/x").failure_hint("slurmstepd: *** JOB 5 CANCELLED DUE TO TIME LIMIT ***") == "timeout"
    assert LsfBackend(B.Runner()).failure_hint(text) == "" and GridEngineBackend(B.Runner()).failure_hint(text) == ""


class Scripted(B.BatchBase):
    name = "scripted"

    def __init__(self, outcome):
        self.outcome = outcome

    def submit(self, spec):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize("raised, expected", [
    ("123", B.Submitted("123")),
    (B.Rejected("invalid partition"), B.Refused("invalid partition")),
    (B.BackendUnavailable("controller down"), B.Unreachable("controller down", timed_out=False)),
    (B.BackendUnavailable("sbatch timed out after 5 s", timed_out=True),
     B.Unreachable("sbatch timed out after 5 s", timed_out=True)),
])
def test_try_submit_turns_the_answer_into_a_value(raised, expected):
    spec = B.JobSpec(name="bm.x.1.a.1", script="/s", workdir="/", stdout="/o", stderr="/e", attempt_dir="/a")
    assert Scripted(raised).try_submit(spec) == expected


def test_a_command_that_times_out_says_so_in_a_field_not_only_in_words():
    with pytest.raises(B.BackendUnavailable) as e:
        B.Runner(timeout=0.2)(["sleep", "5"])
    assert e.value.timed_out
    with pytest.raises(B.BackendUnavailable) as e:
        B.Runner()(["/nonexistent/sbatch"])
    assert not e.value.timed_out
