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
