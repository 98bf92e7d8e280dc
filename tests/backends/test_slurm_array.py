"""SLURM job arrays: argv builders and parsers, fed text captured from the real 22.05 cluster."""

import pytest

from batchman.backends.base import FINISHED, QUEUED, RUNNING, JobSpec
from batchman.backends.batch import slurm
from batchman.backends.batch.slurm_array import (
    DEFAULT_MAX_ARRAY_SIZE, SQUEUE_ARRAY_FORMAT, build_sbatch_array_argv, element_id, expand_rows,
    max_array_size, parse_indexes, split_id,
)

# squeue --states=all -O SQUEUE_ARRAY_FORMAT for `sbatch --hold --array=0-5%2` (element 3 exits 3):
# held, then released (two run, the rest wait for the %2 limit), then all finished.
SQUEUE_HELD = "948_[0-5%2]|PENDING|JobHeldUser|0||flowarr.y\n"
SQUEUE_RUNNING = """\
948_[2-5%2]|PENDING|JobArrayTaskLimit|0||flowarr.y
948_0|RUNNING|None|0|vm|flowarr.y
948_1|RUNNING|None|0|vm|flowarr.y
"""
SQUEUE_DONE = """\
948_4|COMPLETED|None|0|vm|flowarr.y
948_5|COMPLETED|None|0|vm|flowarr.y
948_2|COMPLETED|None|0|vm|flowarr.y
948_0|COMPLETED|None|0|vm|flowarr.y
948_1|COMPLETED|None|0|vm|flowarr.y
948_3|FAILED|NonZeroExitCode|768|vm|flowarr.y
"""
# sacct --parsable2 -X -o JobID,State,ExitCode,Reason,NodeList,JobName, same array
SACCT_DONE = """\
948_0|COMPLETED|0:0|None|vm|flowarr.y
948_1|COMPLETED|0:0|None|vm|flowarr.y
948_2|COMPLETED|0:0|JobArrayTaskLimit|vm|flowarr.y
948_3|FAILED|3:0|JobArrayTaskLimit|vm|flowarr.y
948_4|COMPLETED|0:0|JobArrayTaskLimit|vm|flowarr.y
948_5|COMPLETED|0:0|JobArrayTaskLimit|vm|flowarr.y
"""


def spec(**kw) -> JobSpec:
    base = dict(name="bm.s.arr.reco.1", script="/w/array.sh", workdir="/w", stdout="/w/o", stderr="/w/e",
                attempt_dir="/w/a")
    return JobSpec(**{**base, **kw})


@pytest.mark.parametrize("size,limit,opt", [(1, 0, "--array=0-0"), (200, 0, "--array=0-199"), (200, 30, "--array=0-199%30")])
def test_sbatch_array_argv(size, limit, opt):
    argv = build_sbatch_array_argv(spec(env={"A": "1"}), size, limit)
    plain = slurm.build_sbatch_argv(spec(env={"A": "1"}))
    assert [a for a in argv if a != opt] == plain
    assert argv.index(opt) < argv.index("--export=ALL") < argv.index("/w/array.sh")


@pytest.mark.parametrize("size,limit", [(0, 0), (3, -1)])
def test_sbatch_array_argv_refuses_nonsense(size, limit):
    with pytest.raises(ValueError):
        build_sbatch_array_argv(spec(), size, limit)


@pytest.mark.parametrize("text,indexes", [
    ("7", [7]), ("0-5%2", [0, 1, 2, 3, 4, 5]), ("1,4-6", [1, 4, 5, 6]), ("0-10:5", [0, 5, 10]),
    ("3,3,1", [1, 3]),
])
def test_parse_indexes(text, indexes):
    assert parse_indexes(text) == indexes


@pytest.mark.parametrize("text", ["", "a", "5-2", "1-", "0-4:0", "1;2"])
def test_parse_indexes_refuses_garbage(text):
    with pytest.raises(ValueError, match="not a SLURM array index"):
        parse_indexes(text)


@pytest.mark.parametrize("job_id,want", [
    ("948_4", ("948", [4])), ("948_[2-5%2]", ("948", [2, 3, 4, 5])), ("948", ("948", None)),
    (" 12_0 ", ("12", [0])),
])
def test_split_id(job_id, want):
    assert split_id(job_id) == want


def test_element_id_is_what_scancel_takes():
    assert slurm.build_scancel_argv([element_id("948", 3)])[-1] == "948_3"


def test_squeue_array_format_asks_for_the_array_id_in_the_first_field():
    assert SQUEUE_ARRAY_FORMAT.startswith("JobArrayID:0|,") and SQUEUE_ARRAY_FORMAT.count("JobID") == 0


def test_held_array_is_one_row_and_every_element_is_queued():
    rows = expand_rows(slurm.parse_squeue(SQUEUE_HELD), "948")
    assert sorted(rows) == [0, 1, 2, 3, 4, 5]
    assert {(i, r.job_id, r.state) for i, r in rows.items()} == {(i, f"948_{i}", QUEUED) for i in range(6)}


def test_running_elements_and_the_pending_rest():
    rows = expand_rows(slurm.parse_squeue(SQUEUE_RUNNING), "948")
    assert {i: r.state for i, r in rows.items()} == {0: RUNNING, 1: RUNNING, 2: QUEUED, 3: QUEUED, 4: QUEUED, 5: QUEUED}
    assert rows[0].node == "vm" and rows[4].reason


@pytest.mark.parametrize("parse,text", [(slurm.parse_squeue, SQUEUE_DONE), (slurm.parse_sacct, SACCT_DONE)])
def test_finished_elements_each_with_its_exit_code(parse, text):
    rows = expand_rows(parse(text), "948")
    assert {i: (r.state, r.exit_code, r.failure) for i, r in rows.items()} == {
        **{i: (FINISHED, 0, "") for i in (0, 1, 2, 4, 5)}, 3: (FINISHED, 3, "exit-nonzero")}
    assert rows[3].job_id == "948_3"


def test_rows_of_other_jobs_are_ignored_and_an_element_row_beats_a_range():
    text = "77|RUNNING|None|0|vm|other\n949_1|RUNNING|None|0|vm|x\n" + SQUEUE_RUNNING + "948_2|RUNNING|None|0|vm|flowarr.y\n"
    rows = expand_rows(slurm.parse_squeue(text), "948")
    assert sorted(rows) == [0, 1, 2, 3, 4, 5] and rows[2].state == RUNNING


@pytest.mark.parametrize("conf,n", [({"MaxArraySize": "1001"}, 1001), ({"MaxArraySize": "40000"}, 40000),
                                    ({}, DEFAULT_MAX_ARRAY_SIZE), ({"MaxArraySize": "x"}, DEFAULT_MAX_ARRAY_SIZE),
                                    ({"MaxArraySize": "0"}, 0)])
def test_max_array_size(conf, n):
    assert max_array_size(conf) == n


def test_max_array_size_from_captured_scontrol_text():
    conf = slurm.parse_scontrol_config("MaxArraySize            = 1001\nMaxJobCount             = 10000\n")
    assert max_array_size(conf) == 1001
