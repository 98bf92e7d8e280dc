"""The status store: the only code that takes the lock and writes the status file.

errors.py  what can go wrong (StoreError and its kinds, StatusLost)
lock.py    the kernel lock, who holds it, whether locks work on this filesystem
journal.py the append-only journal of transitions
requests.py the queue of kill / restart / priority / hold / note requests
guard.py   the rules against losing tasks: vanished or replaced files, {}, shrinks, the page's header
snapshot.py the status file's layout (its first line alone: every field but the tasks), written in a stream
changes.py what one write changed (a record of the change log) and how a reader applies it; no I/O
log.py     the change log beside a big file: append, read from an offset, cut a torn line
store.py   Store: read, transaction, write, compact, publish the page, recover's replace_with
"""

from batchman.store.errors import CorruptStatus, LockTimeout, ShrinkRefused, StatusLost, StoreError  # noqa: F401
from batchman.store.guard import html_generation  # noqa: F401
from batchman.store.journal import Transition  # noqa: F401
from batchman.store.lock import check_locking, whoami  # noqa: F401
from batchman.store.requests import apply_requests  # noqa: F401
from batchman.store.store import Store, new_store_id  # noqa: F401
