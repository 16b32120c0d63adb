"""Errors the emulator returns, in the shape of the service's JSON 1.1 error responses."""

# Status codes of the errors that are not plain client errors. botocore retries 429 and 5xx
# (and ThrottlingException whatever its status), as it would against the service.
_STATUS = {
    "TooManyRequestsException": 429,
    "InternalServerError": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
}


class ServiceError(Exception):
    """An error response: its code becomes ``__type`` and ``x-amzn-ErrorType``."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status or _STATUS.get(code, 400)


def not_found(message: str) -> ServiceError:
    """EntityNotFoundException: the user, resource or job does not exist in the organization."""
    return ServiceError("EntityNotFoundException", message)


def invalid_parameter(message: str) -> ServiceError:
    """InvalidParameterException: a parameter the model allows that the service still refuses."""
    return ServiceError("InvalidParameterException", message)


def limit_exceeded(message: str) -> ServiceError:
    """LimitExceededException: a concurrency or frequency limit was reached."""
    return ServiceError("LimitExceededException", message)


def entity_state(message: str) -> ServiceError:
    """EntityStateException: the entity exists but is not in a state that allows the operation."""
    return ServiceError("EntityStateException", message)
