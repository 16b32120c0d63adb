"""Errors the operations commands turn into one line for the person at the terminal."""


class OperationsError(Exception):
    """A question could not be answered; the message says what to fix."""


class InvalidRequestError(OperationsError):
    """The request itself is wrong (an unknown run, a malformed duration or date)."""
