"""Saving batchman.yaml from the parameter dialog keeps the file's permissions (issue 16.3)."""

import os
import stat

from batchman import params as P


def test_saving_parameters_keeps_the_files_mode_and_leaves_no_temp(filled, app_for):
    path = os.path.join(filled.root, P.CONFIG_NAME)
    os.chmod(path, 0o644)
    app = app_for(filled)
    app.type("P")
    app.top().fields["batch.max_jobs"].set_edit_text("7")
    app.type("<f2>")
    assert P.load(filled.root)["batch.max_jobs"] == 7
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert not [n for n in os.listdir(filled.root) if n.endswith(".tmp")]


COMMENTED = """\
# Production 2026 of the lumi analysis -- ask Anna before changing anything
daemon:
  delay: 30           # seconds; the admins asked for no less
  experiment: lumi

batch:
  # our partition, since the 2025 migration
  queue: long
  max_jobs: 40        # at most 40 jobs at once (fair share)
  extra_args: ["--constraint=avx2", '--comment=lumi']
  command: ./analyze  # the analysis
staging:
  pattern: 'run_{run}.dat.*'   # quoted on purpose
"""


def test_saving_parameters_keeps_every_comment_and_untouched_line(filled, app_for):
    path = os.path.join(filled.root, P.CONFIG_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(COMMENTED)
    P.load(filled.root)
    app = app_for(filled)
    app.type("P")
    app.top().fields["batch.max_jobs"].set_edit_text("7")
    app.type("<f2>")
    with open(path, encoding="utf-8") as f:
        saved = f.read()
    assert saved == COMMENTED.replace("max_jobs: 40        #", "max_jobs: 7         #")
    assert P.load(filled.root)["batch.max_jobs"] == 7
