"""tests/source_watch.py: the sources written while a session runs are named (tests/conftest.py
adds them to a failing test's report and to the summary)."""

import os

from source_watch import changed, section, stamp


def tree(root):
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "pkg" / "b.py").write_text("B = 1\n")
    (root / "pkg" / "notes.txt").write_text("not code\n")
    (root / "pkg" / "__pycache__" / "a.py").write_text("not a source\n")
    return str(root / "pkg")


def test_an_untouched_tree_has_nothing_to_say(tmp_path):
    root = tree(tmp_path)
    before = stamp(root)
    assert sorted(os.path.basename(p) for p in before) == ["a.py", "b.py"]
    assert changed(before, stamp(root)) == [] and section(before, root) is None


def test_a_file_edited_added_or_removed_is_named(tmp_path):
    root = tree(tmp_path)
    before = stamp(root)
    a = os.path.join(root, "a.py")
    os.utime(a, ns=(before[a][0] + 1_000_000, before[a][0] + 1_000_000))   # edited, same size
    (tmp_path / "pkg" / "c.py").write_text("C = 1\n")
    os.unlink(os.path.join(root, "b.py"))
    assert changed(before, stamp(root)) == [a, os.path.join(root, "b.py"), os.path.join(root, "c.py")]
    title, text = section(before, root)
    assert title == "sources written during this session"
    assert f"removed  {os.path.join(root, 'b.py')}" in text and a in text


def test_a_file_edited_and_put_back_still_counts(tmp_path):
    root = tree(tmp_path)
    before = stamp(root)
    a = tmp_path / "pkg" / "a.py"
    a.write_text("A = 2\n")             # a mutation check ...
    a.write_text("A = 1\n")             # ... undone: a daemon may have started in between
    os.utime(a, ns=(before[str(a)][0] + 1, before[str(a)][0] + 1))
    assert changed(before, stamp(root)) == [str(a)]
