"""Faults outside WorkMail, for the local mode: crashes of our functions and AWS errors.

WorkMail's own faults are the emulator's business. These are the rest of a bad night:
a Lambda invocation that dies at the worst moment, DynamoDB or S3 pushing back, and an
export configuration that cannot work.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import boto3
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from mailbox_backup import ledger as ledger_module
from mailbox_backup import workmail as workmail_module


class SimulatedCrash(Exception):
    """The Lambda invocation died here (as a timeout or an out-of-memory error would end it)."""


class _Budget:
    """How many more times a fault fires; shared by the threads of the local run."""

    def __init__(self, times: int):
        self._left = times
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


@contextmanager
def injected(faults, stack_outputs: dict[str, str], lambdas) -> Iterator[None]:
    """Apply the scenario's environment faults for as long as the context is open."""
    _break_export_configuration(
        [fault.problem for fault in faults.export_configuration if fault.when == "before_run"], stack_outputs
    )
    later = [fault.problem for fault in faults.export_configuration if fault.when == "after_planning"]
    if later:
        lambdas.before_invoke = _once_before_controller(lambda: _break_export_configuration(later, stack_outputs))
    with ExitStack() as stack:
        for crash in faults.crashes:
            stack.enter_context(_crash_at(crash.point, _Budget(crash.times)))
        if faults.aws_errors:
            stack.enter_context(_aws_errors(faults.aws_errors))
        yield


# Crashes ----------------------------------------------------------------------------------


@contextmanager
def _crash_at(point: str, budget: _Budget) -> Iterator[None]:
    if point in ("before_export_start", "after_export_start"):
        target, name = workmail_module, "start_export"
    else:
        target, name = ledger_module.Ledger, "put_items"
    original = getattr(target, name)

    def crashing(*args, **kwargs):
        if point == "before_export_start" and budget.take():
            raise SimulatedCrash("the function died before calling StartMailboxExportJob")
        result = original(*args, **kwargs)
        if point != "before_export_start" and budget.take():
            raise SimulatedCrash(f"the function died right after {name} succeeded")
        return result

    setattr(target, name, crashing)
    try:
        yield
    finally:
        setattr(target, name, original)


# AWS errors -------------------------------------------------------------------------------


@contextmanager
def _aws_errors(rules) -> Iterator[None]:
    """Answer matching requests with an error before moto sees them (botocore's before-send)."""
    budgets = [(rule, _Budget(rule.times)) for rule in rules]

    def answer(request, **kwargs):
        service, operation = kwargs["event_name"].split(".")[1:3]
        for rule, budget in budgets:
            if rule.service == service and rule.operation == operation and budget.take():
                return _error_response(request.url, rule.service, rule.error)
        return None

    events = boto3._get_default_session()._session.get_component("event_emitter")
    events.register_first("before-send", answer, unique_id="workmail-backup-aws-faults")
    try:
        yield
    finally:
        events.unregister("before-send", answer, unique_id="workmail-backup-aws-faults")


def _error_response(url: str, service: str, code: str) -> AWSResponse:
    status = 500 if code in ("InternalServerError",) else 503 if code in ("SlowDown", "ServiceUnavailable") else 400
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>injected {code}</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    else:
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": f"injected {code}"})
        body = body.encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return AWSResponse(url, status, headers, MockRawResponse(body))


# Export configuration ---------------------------------------------------------------------


def _once_before_controller(action):
    """Run ``action`` before the first controller pass: after planning and any preflight check."""
    budget = _Budget(1)

    def before_invoke(handler: str, event: dict) -> None:
        if handler.endswith("controller.handler") and budget.take():
            action()

    return before_invoke


def _break_export_configuration(problems: list[str], outputs: dict[str, str]) -> None:
    if "role_not_trusted" in problems:
        role_name = outputs["ExportRoleArn"].rsplit("/", 1)[-1]
        untrusted = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        boto3.client("iam").update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(untrusted))
    if "bucket_missing" in problems:
        boto3.client("s3").delete_bucket(Bucket=outputs["ExportBucketName"])
    if "key_disabled" in problems:
        # moto finds keys by id only, not by ARN.
        boto3.client("kms").disable_key(KeyId=outputs["KmsKeyArn"].rsplit("/", 1)[-1])
