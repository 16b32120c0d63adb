"""Errors the functions raise. Step Functions matches on these class names."""


class BackupError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(BackupError):
    """The deployment is misconfigured; an operator has to change a setting."""


class InvalidInputError(BackupError):
    """A function was invoked with input it cannot use."""


class OrganizationUnavailableError(BackupError):
    """The WorkMail organization does not exist or is not active."""


class PreflightFailedError(BackupError):
    """A prerequisite of the export does not hold; the message lists each failed check and its fix."""


class RunsNotStartedError(BackupError):
    """The schedule could not start some organizations' runs; the others were started."""
