"""IBM Spectrum LSF batch backend: bsub, bjobs, bhist, bkill.

Commands and output follow IBM Spectrum LSF 10.1.0's documentation (ibm.com/docs, command
reference ``lsf_command_ref``): ``bsub`` prints ``Job <id> is submitted to [default] queue <q>.``;
``bjobs -o "fields" -json`` (10.1.0.2 and later) prints ``{"COMMAND":"bjobs","JOBS":n,
"RECORDS":[{"JOBID":"1","STAT":"RUN",...}]}``; ``bjobs -noheader -o "... delimiter='^'"`` is the
plain form for older versions; ``bjobs -a`` adds jobs that finished within CLEAN_PERIOD;
``bhist -l`` reads the event log for jobs bjobs forgot; ``bkill`` sends SIGINT, SIGTERM, SIGKILL.
States (About job states; LSF API ``JOB_STAT_*``) and termination reasons (``TERM_*``,
"Termination reasons displayed by bacct, bhist, and bjobs") are mapped below.

Per ``query`` the backend runs one ``bjobs`` for all our jobs and at most one ``bhist`` for
the jobs with a known id that bjobs no longer shows. Everything runs through the
:class:`~batchman.backends.base.Runner`. The argv builders and parsers are in
:mod:`batchman.backends.batch.lsf_text`.
"""

from __future__ import annotations

import dataclasses
import re

from batchman.backends.base import (
    ABSENT, ArrayForm, BackendUnavailable, BatchBase, Capabilities, JobInfo, JobSpec, Rejected, Runner,
)
from batchman.backends.batch import lsf_array as LA
from batchman.backends.batch.lsf_text import (  # noqa: F401 - the pure half, also used as lsf.X
    DELIMITER, FIELDS, NO_JOBS, SUBMITTED_LINE, build_bhist_argv, build_bjobs_argv, build_bkill_argv,
    build_bqueues_argv, build_bsub_argv, build_bsub_input, is_outage, map_state, outage_in, parse_bhist_long, parse_bjobs_json,
    parse_bjobs_plain, parse_bqueues, parse_bsub_output,
)

# --------------------------------------------------------------------------- backend

class LsfBackend(BatchBase):
    """BatchBackend for IBM Spectrum LSF."""

    name = "lsf"
    capabilities = Capabilities(command_log=True, arrays=True)
    array_form = ArrayForm(index_var="LSB_JOBINDEX", first=1, log_token="%I")

    def __init__(self, runner: Runner, user: str | None = None, *, json_output: bool = True,
                 mem_units: bool = True):
        self.runner = runner
        self.user = user
        self.json_output = json_output   # switched off by itself if bjobs has no -json
        self.mem_units = mem_units

    # -- submit ---------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        return self._bsub(build_bsub_argv(spec, mem_units=self.mem_units), build_bsub_input(spec))

    def submit_array(self, spec: JobSpec, size: int) -> str:
        """One ``bsub -J "name[1-size]"``; returns the array's id (its elements: ``<id>[<i+1>]``)."""
        try:
            argv = LA.build_bsub_array_argv(spec, size, mem_units=self.mem_units)
        except ValueError as e:
            raise Rejected(str(e)) from None
        return self._bsub(argv, None)

    def element_id(self, array_id: str, index: int) -> str:
        return LA.element_id(array_id, index)

    def element_index(self, job_id: str) -> int | None:
        return LA.element_index(job_id)

    def max_array_size(self) -> int:
        """LSF's default MAX_JOB_ARRAY_SIZE (1000): lsb.params is not asked (a site that lowered it
        refuses bigger arrays; set batch.arrays false there)."""
        return LA.MAX_JOB_ARRAY_SIZE

    def _bsub(self, argv: list[str], stdin: str | None) -> str:
        cp = self.runner(argv, input=stdin)
        text = f"{cp.stdout}\n{cp.stderr}"
        m = SUBMITTED_LINE.search(cp.stdout) or SUBMITTED_LINE.search(cp.stderr)
        if m:                       # "LSF is down. Please wait..." may precede a success
            return m.group(1)
        msg = (cp.stderr.strip() or cp.stdout.strip() or f"bsub exit {cp.returncode}")
        if cp.returncode != 0 and not outage_in(cp) and re.search(
                r"Job not submitted|illegal option|Usage:|Bad .*specification|No such queue", text, re.I):
            raise Rejected(msg)
        # Outage, or an answer we cannot read: transient. If the job did get in, query()
        # finds it by name (id '') and the daemon adopts it.
        raise BackendUnavailable(f"bsub: {msg}", timed_out="timed out" in msg)

    # -- observe --------------------------------------------------------------
    def _bjobs(self, *, name: str | None = None) -> list[JobInfo]:
        for _ in range(2):
            argv = build_bjobs_argv(user=self.user, json_output=self.json_output, name=name)
            cp = self.runner(argv)
            out, err = cp.stdout, cp.stderr
            if self.json_output and "{" in out:
                try:
                    return [LA.as_element(j) for j in parse_bjobs_json(out)]
                except ValueError:
                    pass
            text = f"{out}\n{err}"
            if is_outage(err) or (cp.returncode != 0 and is_outage(out)):
                raise BackendUnavailable(f"bjobs: {(err.strip() or out.strip()).splitlines()[-1]}")
            if self.json_output and re.search(r"illegal option.*json|json.*(?:illegal|unknown|invalid)", text, re.I):
                self.json_output = False      # LSF older than 10.1.0.2: plain form from now on
                continue
            if not self.json_output and cp.returncode == 0:
                return [LA.as_element(j) for j in parse_bjobs_plain(out)]
            if NO_JOBS.search(err):
                return []
            raise BackendUnavailable(f"bjobs failed (exit {cp.returncode}): {err.strip() or out.strip()}")
        raise BackendUnavailable("bjobs: no usable output format")

    def query(self, jobs: dict[str, str], arrays: dict[str, tuple[str, int]] | None = None) -> dict[str, JobInfo]:
        """``arrays``: job name -> (array name, index) of the asked jobs that are array elements
        (listed by bjobs under the array's name); an element without an id is found through its
        array's name (after a crash)."""
        if not jobs:
            return {}
        arrays = {n: a for n, a in (arrays or {}).items() if n in jobs}
        seen = self._bjobs()
        by_id = {j.job_id: j for j in seen}
        by_name: dict[str, JobInfo] = {}
        for j in seen:   # the newest job of a name wins
            old = by_name.get(j.name)
            if old is None or _id_key(j.job_id) > _id_key(old.job_id):
                by_name[j.name] = j
        result: dict[str, JobInfo] = {}
        lost: dict[str, str] = {}       # job id -> name, for bhist
        for name, jid in jobs.items():
            listed = arrays[name][0] if name in arrays else name     # the name bjobs shows
            if name in arrays and not jid:
                jid = LA.resolve(arrays[name], seen)
            info = by_id.get(jid) if jid else by_name.get(name)
            if info is not None and (not jid or info.name in ("", listed)):
                result[name] = dataclasses.replace(info, name=name)
            elif jid:
                lost[jid] = name
            else:
                result[name] = JobInfo(name=name, job_id="", state=ABSENT)
        if lost:
            found = self._bhist(list(lost))
            for jid, name in lost.items():
                h = found.get(jid)
                if h is None or (h.name and h.name != (arrays[name][0] if name in arrays else name)):
                    result[name] = JobInfo(name=name, job_id=jid, state=ABSENT)
                else:
                    result[name] = dataclasses.replace(h, name=name)
        return result

    def _bhist(self, job_ids: list[str]) -> dict[str, JobInfo]:
        cp = self.runner(build_bhist_argv(job_ids))
        text = f"{cp.stdout}\n{cp.stderr}"
        if outage_in(cp):
            raise BackendUnavailable(f"bhist: {cp.stderr.strip() or cp.stdout.strip()}")
        found = {jid: LA.as_element(h) for jid, h in parse_bhist_long(cp.stdout).items()}
        if not found and cp.returncode != 0 and not NO_JOBS.search(text):
            raise BackendUnavailable(f"bhist failed (exit {cp.returncode}): {cp.stderr.strip()}")
        return found

    def list_ours(self, prefix: str) -> list[JobInfo]:
        return [j for j in self._bjobs(name=prefix + "*") if j.name.startswith(prefix)]

    # -- control --------------------------------------------------------------
    def known_queues(self) -> set[str]:
        """Every queue, from one ``bqueues -w``."""
        cp = self.runner(build_bqueues_argv())
        if cp.returncode != 0:
            raise BackendUnavailable(f"bqueues failed (exit {cp.returncode}): {cp.stderr.strip() or cp.stdout.strip()}")
        return parse_bqueues(cp.stdout)

    def cancel(self, job_ids: list[str]) -> None:
        ids = [j for j in job_ids if j]
        if not ids:
            return
        cp = self.runner(build_bkill_argv(ids))
        if cp.returncode == 0:
            return
        if outage_in(cp):
            raise BackendUnavailable(f"bkill: {cp.stderr.strip()}")
        bad = [ln for ln in cp.stderr.splitlines() if ln.strip()
               and not re.search(r"Job has already finished|No matching job found|is not found", ln)]
        if bad:
            raise BackendUnavailable(f"bkill failed (exit {cp.returncode}): {'; '.join(bad)}")

    def details(self, job_id: str) -> str:
        cp = self.runner(["bjobs", "-l", job_id])
        if outage_in(cp):
            raise BackendUnavailable(f"bjobs: {cp.stderr.strip()}")
        if cp.returncode == 0 and cp.stdout.strip():
            return cp.stdout
        cp2 = self.runner(["bhist", "-a", "-l", job_id])
        if outage_in(cp2):
            raise BackendUnavailable(f"bhist: {cp2.stderr.strip()}")
        return cp2.stdout if cp2.stdout.strip() else (cp.stderr.strip() or cp2.stderr.strip())


def _id_key(job_id: str) -> int:
    m = re.match(r"\d+", job_id or "")
    return int(m.group()) if m else -1
