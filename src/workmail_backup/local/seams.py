"""Where the local mode plugs into moto: Lambda invocations and Wait states.

moto's Docker-less Lambda backend returns a canned answer instead of running code, and
its Step Functions interpreter really sleeps in Wait states. The local mode replaces
both: invocations run the template's handler in this process with the function's own
environment, and waits move the simulated clock. Both hooks check the moto methods they
replace, so a moto upgrade that moves them fails here, loudly, instead of silently
running nothing.
"""

import importlib
import inspect
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import botocore.endpoint as botocore_endpoint
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from mailbox_backup import workmail as handler_workmail

_EXPECTED_INVOKE = ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
_EXPECTED_WAIT = ["self", "env", "wait_seconds"]

# One invocation at a time: handlers read their settings from os.environ, which is shared.
_INVOCATION_LOCK = threading.RLock()


class SeamChangedError(RuntimeError):
    """moto no longer has the method the local mode replaces."""


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    aws_request_id: str = ""


@dataclass
class InvocationRecord:
    function_name: str
    handler: str
    error: str | None


class LocalLambdas:
    """Runs the handlers that the template declares, in this process."""

    def __init__(self, code_dirs: dict[str, Path], busy=nullcontext):
        """``code_dirs`` maps each physical function name to its CodeUri folder; ``busy`` marks an invocation."""
        self.code_dirs = code_dirs
        self._busy = busy
        self.invocations: list[InvocationRecord] = []
        # Called with the handler path and the event before each invocation (fault injection).
        self.before_invoke: Callable[[str, dict], None] | None = None

    def invoke(self, backend, function_name, qualifier, body, headers, response_headers) -> bytes:
        function = backend.get_function(function_name, qualifier)
        event = json.loads(body) if body else {}
        if self.before_invoke:
            self.before_invoke(function.handler, event)

        with self._busy(), _INVOCATION_LOCK, _environment(function.environment_vars):
            handler = self._load_handler(function.function_name, function.handler)
            context = LambdaContext(
                function_name=function.function_name,
                invoked_function_arn=function.function_arn,
                aws_request_id=str(uuid.uuid4()),
            )
            try:
                result = handler(event, context)
            except Exception as error:  # noqa: BLE001 - reported to Step Functions as Lambda does
                self.invocations.append(InvocationRecord(function.function_name, function.handler, repr(error)))
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(_error_payload(error)).encode()

        self.invocations.append(InvocationRecord(function.function_name, function.handler, None))
        return json.dumps(result, default=str).encode()

    def _load_handler(self, function_name: str, handler_path: str):
        code_dir = self.code_dirs.get(function_name)
        if code_dir is None:
            raise SeamChangedError(f"No CodeUri known for function {function_name}; was it created from the template?")
        if str(code_dir) not in sys.path:
            sys.path.insert(0, str(code_dir))
        module_name, _, attribute = handler_path.rpartition(".")
        return getattr(importlib.import_module(module_name), attribute)


def _error_payload(error: Exception) -> dict:
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error)[-5:],
    }


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update({name: str(value) for name, value in variables.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_signature(function, expected: list[str], where: str) -> None:
    found = list(inspect.signature(function).parameters)
    if found != expected:
        raise SeamChangedError(
            f"{where} now takes {found}, not {expected}: the local mode's moto hook must be updated."
        )


@contextmanager
def installed(lambdas: LocalLambdas, sleep: Callable[[float], None]) -> Iterator[None]:
    """Route moto's Lambda invocations to ``lambdas``, and its Wait states and retry backoff to ``sleep``."""
    _check_signature(LambdaSimpleBackend.invoke, _EXPECTED_INVOKE, "moto LambdaSimpleBackend.invoke")
    _check_signature(WaitFunction._wait_interval, _EXPECTED_WAIT, "moto WaitFunction._wait_interval")
    if getattr(retrier_decl, "time", None) is not time:
        raise SeamChangedError(
            "moto's retrier no longer sleeps with time.sleep: the local mode's hook must be updated."
        )
    if getattr(botocore_endpoint, "time", None) is not time:
        raise SeamChangedError("botocore no longer backs off with time.sleep: the local mode's hook must be updated.")
    if not callable(getattr(getattr(handler_workmail.start_export, "retry", None), "sleep", None)):
        raise SeamChangedError("tenacity no longer exposes a retry's sleep: the local mode's hook must be updated.")
    original_invoke, original_wait = LambdaSimpleBackend.invoke, WaitFunction._wait_interval

    def invoke(backend, function_name, qualifier, body, headers, response_headers):
        return lambdas.invoke(backend, function_name, qualifier, body, headers, response_headers)

    def wait_interval(wait_function, env, wait_seconds):
        sleep(wait_seconds)

    LambdaSimpleBackend.invoke = invoke
    WaitFunction._wait_interval = wait_interval
    # The retrier calls time.sleep through its module's "time" name; give it a simulated one.
    retrier_decl.time = SimpleNamespace(sleep=sleep)
    # A client's backoff between retries happens inside an invocation, where simulated time
    # cannot move; it takes no time here (seconds, against exports of minutes), so that a
    # night with injected faults still runs in seconds. The retries themselves all happen.
    botocore_endpoint.time = SimpleNamespace(sleep=lambda seconds: None)
    # The same holds for the handlers' own retries of an export start (tenacity's backoff).
    start_retries = handler_workmail.start_export.retry
    original_start_backoff = start_retries.sleep
    start_retries.sleep = lambda seconds: None
    try:
        yield
    finally:
        LambdaSimpleBackend.invoke = original_invoke
        WaitFunction._wait_interval = original_wait
        retrier_decl.time = time
        botocore_endpoint.time = time
        start_retries.sleep = original_start_backoff
