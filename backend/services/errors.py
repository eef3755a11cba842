"""Domain errors. The api layer turns each into the contract's JSON error body and status."""
from __future__ import annotations

import errno
from typing import Any, Optional


class ServiceError(Exception):
    status = 400

    def __init__(self, code: str, message: str, details: Optional[Any] = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


class InvalidInput(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    status = 401


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    status = 413


class StorageFull(ServiceError):
    """The server's disk (or its database's) is full: 507 Insufficient Storage, not a generic 500."""

    status = 507


_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13  # "database or disk is full"
_POSTGRES_DISK_FULL = "53100"


def storage_full(exc: BaseException) -> Optional[StorageFull]:
    """A StorageFull for an error (or its cause) that says the disk is full, else None. Reads the
    driver's error under SQLAlchemy's wrapper by attribute: services need not import the drivers."""
    for err in (exc, exc.__cause__):
        if isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS:
            where = f" at {err.filename}" if err.filename else ""
            return StorageFull("insufficient_storage",
                               f"The server's disk is full{where} ({err.strerror}); free some space and try again.")
        driver_error = getattr(err, "orig", None)
        if getattr(driver_error, "sqlite_errorcode", None) == _SQLITE_FULL or \
                getattr(driver_error, "sqlstate", None) == _POSTGRES_DISK_FULL:
            return StorageFull("insufficient_storage",
                               "The disk of the server's database is full; free some space and try again.")
    return None
