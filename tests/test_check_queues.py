"""`batchman check` asks the batch system once which partitions / queues exist (issue 16):
the parsers fed captured text, the comparison alone; the real clusters in tests/slurm and
tests/gridengine."""

from batchman.backends.batch.gridengine_text import parse_queue_list
from batchman.backends.batch.lsf_text import parse_bqueues
from batchman.backends.batch.slurm_text import partition_names, partition_refusals
from batchman.cli.setup import unknown_queues

SCONTROL = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL Default=YES MaxTime=UNLIMITED State=UP\n"
    "PartitionName=short AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL Default=NO MaxTime=00:05:00 State=UP\n")
BQUEUES = ("QUEUE_NAME      PRIO STATUS          MAX JL/U JL/P JL/H NJOBS  PEND   RUN  SUSP\n"
           "owners           43  Open:Active       -    -    -    -     0     0     0     0\n"
           "normal           30  Open:Active       -    -    -    -     8     2     6     0\n")


def test_parsers_read_the_names_the_batch_system_lists():
    assert partition_names(SCONTROL) == {"debug", "short"}
    assert partition_names("") == set()
    assert parse_queue_list("all.q\nlong.q\n\n") == {"all.q", "long.q"}
    assert parse_bqueues(BQUEUES) == {"owners", "normal"}


def test_a_misspelled_queue_is_named_with_the_ones_that_exist():
    found = unknown_queues({"batch.queue": "shrot", "jobs.hist.queue": "debug"}, {"debug", "short"}, "partition")
    assert found == [("batch.queue", "partition 'shrot' does not exist in the batch system (did you mean 'short'?); "
                                     "it has: debug, short")]


def test_lists_hosts_and_patterns_are_read_as_the_batch_system_would():
    known = {"all.q", "short"}
    assert unknown_queues({"batch.queue": "short,all.q"}, known) == []
    assert unknown_queues({"batch.queue": "all.q@node7"}, known) == []
    assert unknown_queues({"batch.queue": "*.q"}, known) == []
    assert unknown_queues({"batch.queue": ""}, known) == []
    assert [k for k, _ in unknown_queues({"batch.queue": "short,nope"}, known)] == ["batch.queue"]


RESTRICTED = ("PartitionName=gpu AllowGroups=ALL AllowAccounts=cms,atlas DenyAccounts= AllowQos=ALL DenyQos=low "
              "Default=NO State=UP\n"
              "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL Default=YES State=UP\n")


def test_a_partition_names_the_accounts_and_qos_it_refuses():
    assert partition_refusals(RESTRICTED, "gpu", "lumi", "low") == [
        "account 'lumi' is not allowed on partition gpu (AllowAccounts=cms,atlas)",
        "QOS 'low' is denied on partition gpu (DenyQos=low)"]
    assert partition_refusals(RESTRICTED, "gpu", "cms", "normal") == []
    assert partition_refusals(RESTRICTED, None, "lumi", "low") == []      # the default partition allows all
    assert partition_refusals(RESTRICTED, "nope", "lumi", None) == []     # unknown partition: said elsewhere


def test_a_batch_system_that_does_not_answer_is_a_warning_not_a_refusal(tmp_path, monkeypatch):
    import os
    from click.testing import CliRunner
    from batchman.cli.commands import main
    from e2e_helpers import write_config
    os.makedirs(tmp_path / "raw")
    write_config(tmp_path, **{"batch.backend": "slurm", "batch.queue": "short", "batch.command": "/bin/true"})
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))        # no scontrol
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "check"])
    assert r.exit_code == 0, r.output
    assert "warning: the slurm batch system could not be asked which partitions exist, so batch.queue is not " \
           "checked: cannot run scontrol" in r.output


def test_local_processes_have_no_queues_to_check(tmp_path):
    from batchman.backends.batch.local import LocalBatch
    local = LocalBatch(str(tmp_path))
    assert local.known_queues() is None                      # the base class's answer: nothing to compare
    assert local.access_problems("short", "lumi", "low") == []
