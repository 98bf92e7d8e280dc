"""A real XRootD server (Debian's xrootd-server 5.x) on a loopback port, with a directory as the tape.

* ``all.export /data stage`` + ``oss.msscmd``: a file not yet on disk is ``Offline`` in ``xrdfs stat``
  (the mss script answers ``statx`` from the tape directory);
* ``ofs.preplib libXrdOfsPrepGPI`` (xrootd's generic prepare plugin) runs the stage script for
  ``prepare -s`` / ``-e`` / ``-a``: it copies from the tape directory into the disk (``oss.localroot``)
  one file after the other, ``delay`` seconds each, in the background, so the states are visible.

Why not the FRM (frm_xfrd): a standalone xrootd ignores prepare (XrdOfs::prepare hands it to the
cluster's Finder only; a data server needs a manager xrootd + two cmsd for it to reach frm_xfrd's
queue), so the prepare plugin plays the FRM's stage command here.

xrootd refuses to run as root: as root, the server runs as the ``xrootd`` user (Debian creates it),
and the directories it uses are made under /tmp, readable by it.
"""

from __future__ import annotations

import os
import pwd
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class XrootdSite:
    """``tape`` is the directory playing the tape (files appear as /data/<path below tape>)."""

    def __init__(self, tape: str | None = None, delay: float = 0.05):
        self.base = tempfile.mkdtemp(prefix="bm-xrootd-")
        os.chmod(self.base, 0o755)
        self.tape = os.path.abspath(tape) if tape else os.path.join(self.base, "tape")
        os.makedirs(self.tape, exist_ok=True)
        self.localroot = os.path.join(self.base, "disk")
        self.disk = os.path.join(self.localroot, "data")       # where staged copies appear
        for d in (self.disk, *(os.path.join(self.base, n) for n in ("admin", "cancel", "queue"))):
            os.makedirs(d)
        self.port = _free_port()
        self.url = f"root://127.0.0.1:{self.port}"
        self.delay = delay
        self.proc: subprocess.Popen | None = None

    def _write(self, name: str, text: str) -> str:
        path = os.path.join(self.base, name)
        with open(path, "w") as f:
            f.write(text.format(tape=self.tape, disk=self.localroot, base=self.base, delay=self.delay))
        os.chmod(path, 0o755)
        return path

    def start(self, timeout: float = 20.0) -> "XrootdSite":
        mss, prep = self._write("mss.sh", MSS), self._write("prep.sh", PREP)
        drive = self._write("drive.sh", DRIVE)
        cfg = self._write("xrootd.cfg", "\n".join([
            "all.role server", f"xrd.port {self.port}", "xrd.allow host localhost",
            "all.export /data stage", f"oss.localroot {self.localroot}", f"oss.msscmd {mss}",
            f"all.adminpath {self.base}/admin", f"all.pidpath {self.base}/admin",
            f"ofs.preplib {GPI} -admit all -maxfiles 1000 -run {prep}", ""]))
        argv = ["xrootd", "-c", cfg, "-l", os.path.join(self.base, "xrootd.log"), "-n", "bm"]
        kw = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("xrootd")
            for dirpath, dirnames, filenames in os.walk(self.base):
                for n in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
                    os.chown(n, pw.pw_uid, pw.pw_gid)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, **kw)
        self.drive = subprocess.Popen([drive], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True, **kw)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                pass
            else:
                if subprocess.run(["xrdfs", self.url, "query", "config", "version"],
                                  capture_output=True, timeout=10).returncode == 0:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"xrootd did not start on port {self.port}; see {self.base}/bm/xrootd.log")

    def prep_log(self) -> list[str]:
        try:
            with open(os.path.join(self.base, "prep.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        for p in (self.proc, getattr(self, "drive", None)):
            if p and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)          # the process and what it started
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(self.base, ignore_errors=True)
