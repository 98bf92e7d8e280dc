"""What can go wrong with the status file; every message says what to do."""


class StoreError(Exception):
    """A problem with the status file a person must act on; the message says what to do."""


class LockTimeout(StoreError):
    pass


class CorruptStatus(StoreError):
    pass


class ShrinkRefused(StoreError):
    pass


class StatusLost(CorruptStatus):
    """The status file this process worked on vanished or was replaced by another: it must not
    write a new one. A daemon stops acting; ``batchman recover`` rebuilds the file."""
