import os
import sys

import pytest

from batchman import params as P

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_config(root, **overrides):
    """A batchman.yaml in ``root`` with the defaults and ``overrides`` ({'batch.max_jobs': 3})."""
    values = P.defaults()
    for k, v in overrides.items():
        values[k.replace("__", ".")] = v
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, P.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(P.render_yaml(values))
    return P.load(str(root))


@pytest.fixture
def python():
    return sys.executable
