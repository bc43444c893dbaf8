"""Exceptions raised by the storage layer."""


class StorageError(Exception):
    """Base class for storage failures an operator has to act on."""


class AlreadyRunning(StorageError):
    """Another bot instance holds the lock on the same database."""
