"""batchman.yaml for the tape-rest and xrootd staging backends: a bad URL is one line naming the key."""

import pytest

from batchman import params as P


def load(tmp_path, **values):
    cfg = P.defaults()
    cfg.update(values)
    (tmp_path / P.CONFIG_NAME).write_text(P.render_yaml(cfg))
    return P.load(str(tmp_path))


@pytest.mark.parametrize("backend,key,value,words", [
    ("tape-rest", "staging.tape_rest_url", "", "empty; give the site's https://host:port"),
    ("tape-rest", "staging.tape_rest_url", "dcache.example.org:3880", "is not an https://host[:port] URL"),
    ("xrootd", "staging.xrootd_url", "https://x", "is not a root://host[:port] URL"),
])
def test_a_bad_server_url_names_the_key(tmp_path, backend, key, value, words):
    with pytest.raises(P.ParamError) as e:
        load(tmp_path, **{"staging.backend": backend, key: value})
    assert len(e.value.problems) == 1
    assert e.value.problems[0].startswith(f"{key}: ") and words in e.value.problems[0]


def test_good_urls_load(tmp_path):
    p = load(tmp_path, **{"staging.backend": "tape-rest", "staging.tape_rest_url": "https://dcache.example.org:3880"})
    assert p["staging.backend"] == "tape-rest"
    p = load(tmp_path, **{"staging.backend": "xrootd", "staging.xrootd_url": "root://eos.example.org"})
    assert p["staging.xrootd_url"] == "root://eos.example.org"
