"""The status store: the only code that takes the lock and writes the status file."""

from batchman.store.store import (  # noqa: F401 - the public names of the store
    CorruptStatus, LockTimeout, ShrinkRefused, Store, StoreError, Transition, apply_requests,
    check_locking, html_generation, new_store_id, whoami,
)
