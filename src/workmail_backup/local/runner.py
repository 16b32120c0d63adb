"""Run the real workflow locally: moto, the WorkMail emulator, the template's handlers.

``LocalEnvironment`` deploys ``template.yaml`` into moto, starts the emulator for a
scenario, routes Lambda invocations to the handlers in this process, and drives the
nightly state machine with simulated time.
"""

import json
import logging
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import boto3
from moto import mock_aws

from mailbox_backup import clients as handler_clients
from mailbox_backup import clock as handler_clock
from mailbox_backup import naming
from mailbox_backup.ledger import Ledger, iso
from mailbox_backup.observability import logger as handler_logger
from workmail_backup.local import faults, seams
from workmail_backup.local.emulator import WorkMailEmulator
from workmail_backup.local.simclock import SimulatedClock
from workmail_backup.local.stack import deploy_local_stack

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# A run that has not finished after this many real seconds is reported as stuck.
DEFAULT_TIMEOUT_SECONDS = 600
# How long a stopped execution may take, in real seconds, to notice the stop and end ABORTED.
STOP_TIMEOUT_SECONDS = 10


class LocalRunError(RuntimeError):
    """The local run could not complete; the message says what went wrong."""


@dataclass
class OrganizationResult:
    organization_id: str
    run: dict
    tasks: list[dict]
    peak_running: int
    limit_exceeded: int

    def mailboxes(self) -> list[dict]:
        """One line per mailbox: what happened to it in this run."""
        return [
            {
                "entityId": task["entityId"],
                "email": task.get("email", ""),
                "outcome": task.get("status"),
                "reason": task.get("reason") or task.get("error"),
                "jobId": task.get("jobId"),
                "s3Path": task.get("s3Path"),
                "start": task.get("startedAt"),
                "end": task.get("endedAt"),
            }
            for task in sorted(self.tasks, key=lambda item: item.get("email") or item["entityId"])
        ]


@dataclass
class RunResult:
    run_id: str
    organizations: list[OrganizationResult]
    simulated_start: datetime
    simulated_end: datetime
    wall_seconds: float
    executions: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "runId": self.run_id,
            "simulatedStart": iso(self.simulated_start),
            "simulatedEnd": iso(self.simulated_end),
            "simulatedHours": round((self.simulated_end - self.simulated_start).total_seconds() / 3600, 2),
            "wallSeconds": round(self.wall_seconds, 2),
            "organizations": [
                {
                    "organizationId": result.organization_id,
                    "status": result.run.get("status"),
                    "error": result.run.get("error"),
                    "summary": result.run.get("counts", {}),
                    "skipReasons": result.run.get("skipReasons", {}),
                    "peakRunningJobs": result.peak_running,
                    "limitExceededResponses": result.limit_exceeded,
                    "mailboxes": result.mailboxes(),
                }
                for result in self.organizations
            ],
            "executions": self.executions,
        }


class LocalEnvironment:
    """Everything a local run needs, set up once and torn down on exit."""

    def __init__(
        self,
        scenario,
        template: Path = DEFAULT_TEMPLATE,
        parameters: dict[str, str] | None = None,
        log_path: Path | None = None,
    ):
        """``log_path``: where the handlers' structured logs go (standard output if None)."""
        self.scenario = scenario
        self.log_path = log_path
        self._log_file = None
        self.template = template
        self.parameters = parameters or {}
        self.region = scenario.region
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._seams = None
        self._saved_environment: dict[str, str | None] = {}
        # Executions stopped by stop_unfinished_executions, with the cause given.
        self.stopped_executions: dict[str, str] = {}

    # Setting up --------------------------------------------------------------------------

    def __enter__(self) -> "LocalEnvironment":
        self._set_environment(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                # The stack lives in the organizations' account, as WorkMail's export requires.
                "MOTO_ACCOUNT_ID": self.scenario.account_id,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        self._mock.start()
        try:
            self._start_services()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_services(self) -> None:
        # moto's interpreter logs every absent optional path ($.resume) and every Fail state at
        # ERROR level; the run's own outcome is reported from the ledger instead.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        # A pass that starts and finishes nothing has no metric to publish; that is no news.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self._route_handler_logs()
        self.clock = SimulatedClock(self.scenario.start, self._running_executions)
        handler_clock.use_source(self.clock.now)
        # Built first: a scenario that WorkMail could not have reached (eleven jobs running at
        # its start, say) is refused before anything is deployed.
        self.emulator = WorkMailEmulator(self.scenario, now=self.clock.now)

        parameters = {
            "OrganizationIds": ",".join(org.id for org in self.scenario.organizations),
            **self.parameters,
        }
        self.stack = deploy_local_stack(self.template, parameters, region=self.region)
        self._set_environment({"AWS_ENDPOINT_URL_WORKMAIL": self.emulator.start()})

        # Clients cached by an earlier environment in this process point at its endpoints.
        handler_clients.forget()
        self.lambdas = seams.LocalLambdas(
            busy=self.clock.busy, code_dirs={function.name: function.code_uri for function in self.stack.functions}
        )
        self._seams = ExitStack()
        self._seams.enter_context(seams.installed(self.lambdas, self.clock.sleep))
        self._seams.enter_context(faults.injected(self.scenario.environment_faults, self.stack.outputs, self.lambdas))

        self.stepfunctions = boto3.client("stepfunctions", region_name=self.region)
        self.ledger = Ledger(self.stack.outputs["LedgerTableName"])

    def _route_handler_logs(self) -> None:
        if self.log_path is None:
            _send_handler_logs_to(_CurrentStdout())
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("w", encoding="utf-8")
        _send_handler_logs_to(self._log_file)

    def _set_environment(self, variables: dict[str, str]) -> None:
        for name, value in variables.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def __exit__(self, *exc_info) -> None:
        try:
            try:
                self.stop_unfinished_executions()
            finally:
                self._stop_services()
        finally:
            # Whatever failed above, moto and the environment must not leak into the next user.
            self._mock.stop()
            for name, value in self._saved_environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def stop_unfinished_executions(self, cause: str = "environment closed") -> None:
        """Stop what a run cut short (at its time limit, or by a failed test) left running, as an
        operator's StopExecution would, and wake it from its Wait: left alone, its thread would
        poll the clock until the process ends. The simulated clock stops for good."""
        if any(getattr(self, part, None) is None for part in ("clock", "stack", "stepfunctions")):
            return
        for execution in self.executions():
            if execution["status"] == "RUNNING":
                self.stepfunctions.stop_execution(executionArn=execution["executionArn"], cause=cause)
                self.stopped_executions[execution["executionArn"]] = cause
        self.clock.close()

        # moto marks an execution ABORTED once its thread, woken, sees the stop.
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while self._running_executions() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _stop_services(self) -> None:
        if self._seams is not None:
            self._seams.close()
            self._seams = None
        if getattr(self, "emulator", None) is not None:
            self.emulator.stop()
        handler_clock.use_system_clock()
        if self._log_file is not None:
            _send_handler_logs_to(_CurrentStdout())
            self._log_file.close()
            self._log_file = None

    # Running -----------------------------------------------------------------------------

    @property
    def organization_ids(self) -> list[str]:
        return [organization.id for organization in self.scenario.organizations]

    @property
    def organization_aliases(self) -> dict[str, str]:
        return {organization.id: organization.alias for organization in self.scenario.organizations}

    def run_nightly(
        self,
        scheduled_time: datetime | None = None,
        organization_ids: list[str] | None = None,
        on_progress: Callable[["LocalEnvironment"], None] | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> RunResult:
        """Start the nightly state machine as the schedule would, and wait for every run."""
        scheduled_time = scheduled_time or self.clock.now()
        organization_ids = organization_ids or self.organization_ids
        schedule_input = {"organizationIds": organization_ids, "scheduledTime": iso(scheduled_time)}
        # EventBridge Scheduler gives every delivery an execution name of its own.
        name = f"schedule-{uuid.uuid4()}"
        result = self._run(
            self.stack.outputs["NightlyStateMachineArn"], schedule_input, on_progress, timeout_seconds, name=name
        )
        result.organizations = [self.organization_result(org_id, result.run_id) for org_id in organization_ids]
        return result

    def run_on_demand(
        self,
        organization_id: str,
        on_progress: Callable[["LocalEnvironment"], None] | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> RunResult:
        """Start one organization's run now, as an operator's on-demand run would."""
        run_id = naming.on_demand_run_id(self.clock.now())
        execution_input = {"organizationId": organization_id, "runId": run_id}
        result = self._run(
            self.stack.outputs["OrganizationBackupStateMachineArn"],
            execution_input,
            on_progress,
            timeout_seconds,
            name=naming.execution_name(organization_id, run_id),
        )
        result.run_id = run_id
        result.organizations = [self.organization_result(organization_id, run_id)]
        return result

    def run_state_machine(
        self, state_machine_arn: str, execution_input: dict, name: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ) -> RunResult:
        """Run any state machine of this environment (a benchmark's baseline, say) to the end."""
        result = self._run(state_machine_arn, execution_input, None, timeout_seconds, name=name)
        result.run_id = execution_input.get("runId", result.run_id)
        return result

    def _run(self, state_machine_arn, execution_input, on_progress, timeout_seconds, name=None) -> RunResult:
        wall_start, simulated_start = time.monotonic(), self.clock.now()
        already = {execution["executionArn"] for execution in self.executions()}
        arguments = {"stateMachineArn": state_machine_arn, "input": json.dumps(execution_input)}
        if name:
            arguments["name"] = name
        execution = self.stepfunctions.start_execution(**arguments)
        self._wait_for_executions(timeout_seconds, on_progress)

        dispatched = self._execution_output(execution["executionArn"]) or {}
        run_id = dispatched.get("runId", "")
        new_executions = [item for item in self.executions() if item["executionArn"] not in already]
        return RunResult(
            run_id=run_id,
            organizations=[self.organization_result(org_id, run_id) for org_id in self.organization_ids],
            simulated_start=simulated_start,
            simulated_end=self.clock.now(),
            wall_seconds=time.monotonic() - wall_start,
            executions=new_executions,
        )

    def _wait_for_executions(self, timeout_seconds: float, on_progress) -> None:
        deadline = time.monotonic() + timeout_seconds
        time.sleep(0.05)
        while self._running_executions():
            if on_progress:
                on_progress(self)
            if time.monotonic() > deadline:
                raise LocalRunError(
                    f"The run did not finish within {timeout_seconds:g} s of real time (--time-limit); "
                    f"simulated time reached {iso(self.clock.now())}."
                )
            time.sleep(0.05)
        if on_progress:
            on_progress(self)

    def _execution_output(self, execution_arn: str) -> dict | None:
        described = self.stepfunctions.describe_execution(executionArn=execution_arn)
        return json.loads(described["output"]) if described.get("output") else None

    def executions(self) -> list[dict]:
        """Every execution of the stack's state machines, with status and history length."""
        found = []
        for output in ("NightlyStateMachineArn", "OrganizationBackupStateMachineArn"):
            paginator = self.stepfunctions.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=self.stack.outputs[output]):
                for execution in page["executions"]:
                    found.append(
                        {
                            "executionArn": execution["executionArn"],
                            "name": execution["executionArn"].split(":")[-1],
                            "status": execution["status"],
                        }
                    )
        return found

    def _running_executions(self) -> int:
        from moto.stepfunctions.parser.api import ExecutionStatus
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[self.scenario.account_id][self.region]
        return len(backend._get_executions(ExecutionStatus.RUNNING))

    # Reading results ---------------------------------------------------------------------

    def organization_result(self, organization_id: str, run_id: str) -> OrganizationResult:
        # An organization the scenario does not have is one WorkMail does not know either.
        known = organization_id in self.organization_ids
        return OrganizationResult(
            organization_id=organization_id,
            run=self.ledger.get_run(organization_id, run_id) or {},
            tasks=list(self.ledger.tasks(organization_id, run_id)),
            peak_running=self.emulator.peak_running(organization_id) if known else 0,
            limit_exceeded=self.emulator.limit_exceeded_count(organization_id) if known else 0,
        )


class _CurrentStdout:
    """Whatever ``sys.stdout`` is when a line is written.

    The handlers' logger is built once per process and keeps the stream it is given; a
    stdout replaced since (a test's CLI runner, say, closes its own) must not be kept.
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _send_handler_logs_to(stream) -> None:
    # Not StreamHandler.setStream: it flushes the stream it replaces, which may be closed already.
    handler = handler_logger.registered_handler
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()
