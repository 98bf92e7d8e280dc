"""Build step only (all metadata is in pyproject.toml): a wheel carries a copy of the
top-level examples/ directory as batchman/_examples/, so `batchman init --example NAME`
works after a plain `pip install .`. examples/ stays the source of truth; symlinks in it
(hallc-replay's batchman-jobwrap -> contrib/jobwrap) are copied as the files they name."""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class build_py_with_examples(build_py):
    def run(self):
        super().run()
        src = os.path.join(HERE, "examples")
        if not os.path.isdir(src):      # building from an sdist that lacks them: say so, do not fail
            self.warn("examples/ not found: `batchman init --example` will not work in this build")
            return
        import importlib.util
        spec = importlib.util.spec_from_file_location("_bm_examples", os.path.join(HERE, "batchman", "examples.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        dest = os.path.join(self.build_lib, "batchman", "_examples")
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=lambda d, names: [n for n in names if mod.is_generated(n)])


setup(cmdclass={"build_py": build_py_with_examples})
