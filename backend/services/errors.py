"""Domain errors. The api layer turns each into the contract's JSON error body and status."""
from __future__ import annotations

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
