"""A real XRootD server (Debian's xrootd-server 5.x) on a loopback port, with a directory as the tape.

* ``all.export /data stage`` + ``oss.msscmd``: a file not yet on disk is ``Offline`` in ``xrdfs stat``
  (the mss script answers ``statx`` from the tape directory);
* ``ofs.preplib libXrdOfsPrepGPI`` (xrootd's generic prepare plugin) runs the stage script for
  ``prepare -s`` / ``-e`` / ``-a``: it copies from the tape directory into the disk (``oss.localroot``)
  one file after the other, ``delay`` seconds each, in the background, so the states are visible.

Or, with ``frm=True``, XRootD's own FRM (see :class:`XrootdSite`): a standalone xrootd ignores
prepare (XrdOfs::prepare hands it to the cluster's Finder only), so that takes a manager and a data
server, each an xrootd + a cmsd, and frm_xfrd.

xrootd refuses to run as root: as root, the server runs as the ``xrootd`` user (Debian creates it),
and the directories it uses are made under /tmp, readable by it.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

GPI = "libXrdOfsPrepGPI-5.so"

MSS = r"""#!/bin/sh
# oss.msscmd: $1 = command, $2 = path. First line of the answer: the return code (-2 = ENOENT).
f="{tape}${{2#/data}}"
case "$1" in
  statx|exists) if [ -f "$f" ]; then echo 0; [ "$1" = statx ] && echo "f rw-r--r-- 1 0 0 $(stat -c '%X %Z %Y %s' "$f") 4096 1"; else echo -2; fi ;;
  *) echo 0 ;;
esac
"""

PREP = r"""#!/bin/sh
# XrdOfsPrepGPI: [-p prty] -- REQID stage|evict|cancel PATH...   (queues the work, like xrootd for the FRM)
while [ "$1" != "--" ]; do shift; done; shift
rid=$(echo "$1" | tr '/*' '__'); what=$2; shift 2
echo "$what $rid $*" >> "{base}/prep.log"
case "$what" in
  stage) q="{base}/queue/$(date +%s%N)-$rid"; printf '%s\n' "$@" > "$q.tmp" && mv "$q.tmp" "$q.req" ;;
  cancel) touch "{base}/cancel/$rid" ;;
  evict) for p in "$@"; do rm -f "{disk}$p"; done ;;
esac
exit 0
"""

DRIVE = r"""#!/bin/sh
# the tape drive (frm_xfrd's part): requests in the order queued, one file after the other,
# {delay} s each, skipping the rest of a cancelled request
while [ -d "{base}/queue" ]; do
  for q in "{base}"/queue/*.req; do
    [ -f "$q" ] || continue
    rid=${{q##*/}}; rid=${{rid#*-}}; rid=${{rid%.req}}
    while read -r p; do
      [ -e "{base}/cancel/$rid" ] && break
      d="{disk}$p"; [ -f "$d" ] && continue
      sleep {delay}
      mkdir -p "${{d%/*}}" && cp "{tape}${{p#/data}}" "$d.part" 2>/dev/null && mv "$d.part" "$d"
    done < "$q"
    rm -f "$q"
  done
  sleep 0.05
done
"""


# Ports for the servers: below the kernel's ephemeral range (32768-60999 here), where every
# outgoing connection on the machine (other suites', the clusters') takes its local port -- a port
# from bind(0) is in that range and could be taken before the server binds it.
PORTS = (20000, 32000)


def _free_port(taken: tuple[int, ...] = ()) -> int:
    while True:
        port = random.randrange(*PORTS)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def xrootd_missing() -> str:
    for prog in ("xrootd", "xrdfs"):
        if not shutil.which(prog):
            return f"{prog} not installed (apt-get install xrootd-server xrootd-client)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("xrootd")
        except KeyError:
            return "running as root and there is no xrootd user to run the server as"
    return ""


def require() -> None:
    """Skip (one line) when xrootd cannot run here; under CI fail instead."""
    why = xrootd_missing()
    if why:
        import pytest
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {why}", pytrace=False)
        pytest.skip(why)


FRM_COPY = r"""#!/bin/sh
# frm.xfr.copycmd: $1 = LFN, $2 = PFN (frm_xfrd renames it into place when this succeeds)
echo "stage $1" >> "{base}/prep.log"
sleep {delay}
cp "{tape}${{1#/data}}" "$2"
"""


class XrootdSite:
    """``tape`` is the directory playing the tape (files appear as /data/<path below tape>).

    ``frm=False``: one standalone xrootd whose prepare plugin queues for ``drive.sh``.
    ``frm=True``: XRootD's own File Residency Manager: a manager (xrootd + cmsd) that clients talk
    to, a data server (xrootd + cmsd with ``cms.prep ifpgm frm_xfragent``) and ``frm_xfrd`` running
    ``frm.xfr.copycmd``. The FRM ignores ``prepare -e`` (eviction is frm_purged's job, by policy).
    """

    def __init__(self, tape: str | None = None, delay: float = 0.05, frm: bool = False):
        self.base = tempfile.mkdtemp(prefix="bm-xrootd-")
        os.chmod(self.base, 0o755)
        self.tape = os.path.abspath(tape) if tape else os.path.join(self.base, "tape")
        os.makedirs(self.tape, exist_ok=True)
        self.localroot = os.path.join(self.base, "disk")
        self.disk = os.path.join(self.localroot, "data")       # where staged copies appear
        for d in (self.disk, *(os.path.join(self.base, n) for n in ("admin", "cancel", "queue"))):
            os.makedirs(d)
        self.delay, self.frm = delay, frm
        self._ports()
        self.procs: list[subprocess.Popen] = []

    def _ports(self) -> None:
        self.port = _free_port()
        self.cms_port = _free_port((self.port,))
        self.server_port = _free_port((self.port, self.cms_port))
        self.url = f"root://127.0.0.1:{self.port}"

    def _write(self, name: str, text: str) -> str:
        path = os.path.join(self.base, name)
        with open(path, "w") as f:
            f.write(text.format(tape=self.tape, disk=self.localroot, base=self.base, delay=self.delay))
        os.chmod(path, 0o755)
        return path

    def _config(self) -> str:
        mss = self._write("mss.sh", MSS)
        common = ["all.export /data stage", f"all.adminpath {self.base}/admin", f"all.pidpath {self.base}/admin"]
        data = [f"oss.localroot {self.localroot}", f"oss.msscmd {mss}"]
        if not self.frm:
            prep = self._write("prep.sh", PREP)
            lines = ["all.role server", f"xrd.port {self.port}", *common, *data,
                     f"ofs.preplib {GPI} -admit all -maxfiles 1000 -run {prep}"]
        else:
            copy = self._write("frmcopy.sh", FRM_COPY)
            lines = [f"all.manager 127.0.0.1:{self.cms_port}", *common,
                     "if named manager", "  all.role manager", f"  xrd.port {self.port}", "  cms.delay startup 1 lookup 1",
                     "else", "  all.role server", f"  xrd.port {self.server_port}", *("  " + x for x in data),
                     f"  frm.xfr.copycmd in {copy} $LFN $PFN", "  frm.xfr.max 8", "  cms.prep ifpgm /usr/bin/frm_xfragent", "fi"]
        return self._write("xrootd.cfg", "\n".join(lines) + "\n")

    def start(self, timeout: float = 30.0, tries: int = 3) -> "XrootdSite":
        """Start the servers; one that ends at once (its port taken meanwhile by another
        process: the flake seen once) is started again on other ports, up to ``tries`` times."""
        for _ in range(tries):
            ready = self._start(timeout)
            if ready:
                return self
            self._kill()
            if ready is None:                 # not ended: it did not answer in time
                break
            self._ports()
            shutil.rmtree(os.path.join(self.base, "admin"))      # the ended server's pid, sockets, links
            os.makedirs(os.path.join(self.base, "admin"))
        self.stop()
        raise RuntimeError(f"xrootd did not start on port {self.port}")

    def _start(self, timeout: float) -> bool | None:
        cfg = self._config()
        log = lambda n: ["-l", os.path.join(self.base, f"{n}.log")]       # noqa: E731
        if self.frm:
            argvs = [["xrootd", "-c", cfg, "-n", "manager", *log("x")], ["cmsd", "-c", cfg, "-n", "manager", *log("c")],
                     ["xrootd", "-c", cfg, "-n", "server", *log("x")], ["cmsd", "-c", cfg, "-n", "server", *log("c")],
                     ["frm_xfrd", "-c", cfg, "-n", "server", *log("f")]]
        else:
            argvs = [["xrootd", "-c", cfg, "-n", "bm", *log("xrootd")], [self._write("drive.sh", DRIVE)]]
        kw = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("xrootd")
            for dirpath, dirnames, filenames in os.walk(self.base):
                for n in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
                    os.chown(n, pw.pw_uid, pw.pw_gid)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        for argv in argvs:
            self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True, **kw))
        return self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> bool | None:
        """The server answers (and, with the FRM, the data server has joined the manager): True;
        a process ended: False; neither within ``timeout``: None."""
        probe = ["xrdfs", self.url, "stat", "/data"] if self.frm else ["xrdfs", self.url, "query", "config", "version"]
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if any(p.poll() is not None for p in self.procs):
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if subprocess.run(probe, capture_output=True, timeout=10,
                                  env={**os.environ, "XRD_CONNECTIONRETRY": "1", "XRD_REQUESTTIMEOUT": "3"}
                                  ).returncode == 0:
                    return True
            except (OSError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.2)
        return None

    def prep_log(self) -> list[str]:
        try:
            with open(os.path.join(self.base, "prep.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)          # the process and what it started
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.procs = []
