"""AWS clients, built once per Lambda environment and reused across invocations.

Every client retries throttling and transient errors with exponential backoff and
jitter (botocore's standard mode). Building a client is slow, so each is cached; a host
that runs several environments in one process (the local mode) calls ``forget`` between
them, since endpoints and credentials are read when a client is built.
"""

from functools import cache

import boto3
from botocore.config import Config

RETRYING = Config(retries={"mode": "standard", "total_max_attempts": 8})
# botocore counts LimitExceededException as throttling and would retry it. For an export
# start it means "the organization is full or the mailbox was exported less than 24 hours
# ago", which no quick retry fixes, so starts use a client that does not retry by itself.
NOT_RETRYING = Config(retries={"mode": "standard", "total_max_attempts": 1})


@cache
def workmail():
    return boto3.client("workmail", config=RETRYING)


@cache
def workmail_for_starts():
    return boto3.client("workmail", config=NOT_RETRYING)


@cache
def dynamodb():
    return boto3.resource("dynamodb", config=RETRYING)


@cache
def s3():
    return boto3.client("s3", config=RETRYING)


@cache
def stepfunctions():
    return boto3.client("stepfunctions", config=RETRYING)


@cache
def kms():
    return boto3.client("kms", config=RETRYING)


@cache
def iam():
    return boto3.client("iam", config=RETRYING)


@cache
def sts():
    return boto3.client("sts", config=RETRYING)


@cache
def sns():
    return boto3.client("sns", config=RETRYING)


def forget() -> None:
    """Drop every cached client, so that the next call builds one from the current environment."""
    for factory in (workmail, workmail_for_starts, dynamodb, s3, stepfunctions, kms, iam, sts, sns):
        factory.cache_clear()
