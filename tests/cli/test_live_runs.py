"""Commands that act on, or look into, runs while the local workflow really runs them.

One environment goes through several nights in order, since each step depends on the last:
a refused retry, a run in progress seen from outside, then a start and a retry that work.
"""

import json
import time
from datetime import timedelta

import pytest

from mailbox_backup.ledger import Ledger
from tests.cli.conftest import DISABLED, FAILING, ORG, open_environment, troubled_scenario
from tests.e2e.conftest import organization, scenario

DAY_AND_AN_HOUR = timedelta(hours=25).total_seconds()


class HeldTime:
    """Keeps simulated time still, so that a run stays mid-flight while it is looked at.

    The clock jumps only when every running execution waits; one more busy participant
    than there are executions means it never does, until released.
    """

    def __init__(self, clock):
        self.clock = clock
        self.counting = clock._participants

    def hold(self) -> None:
        self.clock._participants = lambda: self.counting() + 1

    def release(self) -> None:
        self.clock._participants = self.counting


def stack_options(environment) -> list[str]:
    """The options that point the CLI at the local stack's ledger and state machine."""
    outputs = environment.stack.outputs
    return ["--table", outputs["LedgerTableName"], "--state-machine", outputs["OrganizationBackupStateMachineArn"]]


def wait_for_execution(environment, execution_arn: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = environment.stepfunctions.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING":
            return status
        time.sleep(0.05)
    pytest.fail(f"execution {execution_arn} still running after {timeout} s")


def wait_for_active_jobs(environment, count: int, timeout: float = 300) -> None:
    """Wait until the controller's pass has started ``count`` jobs (it starts them one by one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [run for run in environment.ledger.runs(ORG) if run.get("status") == "RUNNING"]
        if running and len(environment.ledger.active_tasks(ORG, running[0]["runId"])) >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"the on-demand run never had {count} running jobs")


def test_start_watch_and_retry_through_several_nights(cli, tmp_path, monkeypatch):
    with open_environment(tmp_path, troubled_scenario()) as environment:
        source = stack_options(environment)
        environment.run_nightly()

        # GIVEN a night in which user001's export failed
        # WHEN a retry is asked for at once THEN WorkMail's 24-hour rule refuses it, with the time it opens
        refused = cli("retry-failed", *source)
        assert refused.exit_code == 1
        assert "24 hours" in refused.stderr and "2026-12-04T" in refused.stderr
        code, refusal = cli.json("retry-failed", *source)
        assert code == 1 and refusal["started"] is False and "2026-12-04T" in refusal["refusedBecause"]

        # WHEN a run is in progress THEN status, watch and start see it
        environment.clock.advance(DAY_AND_AN_HOUR)
        held = HeldTime(environment.clock)
        seen = {}

        def look_while_running(_environment) -> None:
            if seen:
                return
            wait_for_active_jobs(environment, count=10)
            seen["status"] = cli.json("status", *source)
            seen["watch"] = cli.json("watch", "--once", *source)
            seen["watch table"] = cli("watch", "--once", *source, columns=80)
            seen["start"] = cli("start", *source)
            held.release()

        held.hold()
        try:
            environment.run_on_demand(ORG, on_progress=look_while_running)
        finally:
            held.release()

        code, status = seen["status"]
        current = status["organizations"][0]["current"]
        assert current["status"] == "RUNNING" and current["runningNow"] == 10
        assert current["execution"]["status"] == "RUNNING"
        _, watched = seen["watch"]
        snapshot = watched["runs"][0]
        assert (snapshot["slotsInUse"], snapshot["slots"], snapshot["queued"]) == (10, 10, 2)
        assert all(job["progressSource"] == "workmail" and job["jobId"] for job in snapshot["jobs"])
        watch_table = seen["watch table"].stdout
        assert "10/10 slots in use, 2 queued" in watch_table and "…" not in watch_table
        assert all(job["email"] in watch_table for job in snapshot["jobs"])
        assert seen["start"].exit_code == 1 and "is RUNNING" in seen["start"].stderr

        # WHEN a day has passed THEN start begins an on-demand run that exports the mailboxes again
        environment.clock.advance(DAY_AND_AN_HOUR)
        code, started = cli.json("start", *source)
        assert code == 0 and started["started"] and started["runId"].startswith("manual-")
        # A second start a moment later finds the first recorded, though its execution has barely begun
        environment.clock.advance(1)
        again = cli("start", *source)
        assert again.exit_code == 1 and started["runId"] in again.stderr
        assert wait_for_execution(environment, started["executionArn"]) == "SUCCEEDED"
        run = environment.ledger.get_run(ORG, started["runId"])
        assert run["status"] == "SUCCEEDED" and run["counts"]["exported"] == 11

        # WHEN coverage is asked for a day gone by THEN the exports of that day count, though newer ones exist
        code, first_night = cli.json("coverage", "--deadline", "2026-12-03", *source)
        assert first_night["deadlinePassed"] is True and first_night["covered"] == 10

        # WHEN another day has passed THEN retry-failed starts a run of the failed mailbox alone
        failing_id = next(m["entityId"] for m in environment.ledger.mailboxes(ORG) if m["email"] == FAILING)
        environment.clock.advance(DAY_AND_AN_HOUR)
        code, retried = cli.json("retry-failed", *source)
        assert code == 0 and retried["failed"] == [FAILING] and retried["retriedNow"] == 1
        assert wait_for_execution(environment, retried["executionArn"]) == "SUCCEEDED"
        retry_run = environment.ledger.get_run(ORG, retried["runId"])
        assert retry_run["counts"]["total"] == 1 and retry_run["requestedMailboxes"] == [failing_id]

        code, listed = cli.json("runs", *source)
        assert len(listed["runs"]) == 4

        # The stack name finds the same ledger through CloudFormation outputs
        code, by_stack = cli.json("status", "--stack", environment.stack.stack_name)
        assert by_stack["organizations"][0]["last"]["runId"] == retried["runId"]
        missing = cli("status", "--stack", "no-such-stack")
        assert missing.exit_code == 2 and "no-such-stack was not found" in missing.stderr

        # AWS_REGION alone names the region, as it does for the AWS CLI (boto3 reads AWS_DEFAULT_REGION only)
        monkeypatch.delenv("AWS_DEFAULT_REGION")
        code, by_region = cli.json("status", "--stack", environment.stack.stack_name)
        assert by_region["organizations"][0]["last"]["runId"] == retried["runId"]


def test_status_and_watch_name_an_export_that_runs_far_past_its_expected_time(cli, tmp_path):
    # user003's 500 MB mailbox is expected to take about ten minutes; tonight WorkMail needs 36 hours.
    slow = {"entity": "user003", "state": "COMPLETED", "duration": "36h"}
    definition = scenario(organization(users=4, faults={"job_outcomes": [slow]}))
    with open_environment(tmp_path, definition) as environment:
        source = ["--table", environment.stack.outputs["LedgerTableName"]]
        held = HeldTime(environment.clock)
        seen = {}

        def look_once_only_the_slow_export_is_left(_environment) -> None:
            open_runs = [run for run in environment.ledger.runs(ORG) if run.get("status") == "RUNNING"]
            if seen or not open_runs or open_runs[0]["counts"].get("exported", 0) < 3:
                return
            held.hold()
            seen["on time"] = cli.json("status", *source)
            environment.clock.advance(timedelta(hours=5).total_seconds())
            seen["status"] = cli.json("status", *source)
            seen["watch"] = cli.json("watch", "--once", *source)
            seen["watch table"] = cli("watch", "--once", *source, columns=80)
            held.release()

        try:
            environment.run_nightly(on_progress=look_once_only_the_slow_export_is_left)
        finally:
            held.release()

    # GIVEN three exports done and user003's still within what its size allows THEN status is healthy
    code, on_time = seen["on time"]
    assert code == 0 and on_time["organizations"][0]["current"]["overrunning"] == []

    # WHEN it has run five hours THEN status is unhealthy and names it, with its time and the time expected
    code, status = seen["status"]
    problems = status["organizations"][0]["problems"]
    assert code == 1 and len(problems) == 1
    assert "user003@example.com" in problems[0] and "has run 5h" in problems[0] and "expected 10m" in problems[0]
    _, watched = seen["watch"]
    (overrunning,) = [job for job in watched["runs"][0]["jobs"] if job["overrunning"]]
    assert overrunning["email"] == "user003@example.com"
    assert "! user003@example.com has run 5h" in seen["watch table"].stdout

    # The controller says so too, for the ExportOverrunningAlarm and the logs
    logged = [json.loads(line) for line in (tmp_path / "handlers.log").read_text().splitlines()]
    warnings = [line for line in logged if line["message"] == "Export running far past its expected time"]
    assert warnings and {line["entity_id"] for line in warnings} == {overrunning["entityId"]}


def test_start_of_named_mailboxes_exports_only_those(cli, tmp_path):
    with open_environment(tmp_path, troubled_scenario()) as environment:
        table = ["--table", environment.stack.outputs["LedgerTableName"]]
        source = [*table, "--state-machine", environment.stack.outputs["OrganizationBackupStateMachineArn"]]
        environment.run_nightly()

        # WHEN no state machine is named THEN that is what the refusal says, not the 24-hour rule
        no_machine = cli("start", *table, "-m", "user003@example.com")
        assert no_machine.exit_code == 2 and "needs the OrganizationBackup state machine" in no_machine.stderr

        # WHEN the named mailboxes were exported last night THEN the 24-hour rule refuses, with the time it opens
        refused = cli("start", *source, "-m", "user003@example.com")
        assert refused.exit_code == 1
        assert "Every mailbox named" in refused.stderr and "2026-12-04T" in refused.stderr

        # WHEN a name is unknown or disabled THEN nothing starts and the message names what to leave out
        unknown = cli("start", *source, "-m", "user003@example.com", "-m", "nobody@example.com")
        assert unknown.exit_code == 2 and "nobody@example.com" in unknown.stderr
        strangers = [argument for index in range(7) for argument in ("-m", f"{'x' * 500}{index}@example.com")]
        many_unknown = cli("start", *source, *strangers)
        assert many_unknown.exit_code == 2 and "and 2 more" in many_unknown.stderr
        assert len(many_unknown.stderr) < 1000, "the refusal stays readable however long the list"
        disabled = cli("start", *source, "-m", DISABLED)
        assert disabled.exit_code == 2 and f"leave out {DISABLED} (user is disabled)" in disabled.stderr
        empty_list = tmp_path / "empty.txt"
        empty_list.write_text("# nobody yet\n\n")
        nobody = cli("start", *source, "--mailboxes-from", str(empty_list))
        assert nobody.exit_code == 2 and "no mailbox named" in nobody.stderr

        # WHEN the execution cannot be started THEN the request is withdrawn and blocks no later start
        environment.clock.advance(DAY_AND_AN_HOUR)
        broken = cli("start", *table, "--state-machine", source[-1] + "-missing", "-m", "user003@example.com")
        assert broken.exit_code == 2
        code, status = cli.json("status", *table)
        assert status["organizations"][0]["current"] is None

        # WHEN two mailboxes are named, one by entity id and one from a file, THEN the run exports just them
        user004 = next(m for m in environment.ledger.mailboxes(ORG) if m["email"] == "user004@example.com")
        listing = tmp_path / "mailboxes.txt"
        listing.write_text("USER003@example.com   # case does not matter\n\n")
        code, started = cli.json("start", *source, "-m", user004["entityId"], "--mailboxes-from", str(listing))
        assert code == 0 and started["namedMailboxes"] == 2 and started["eligibleNow"] == 2
        assert wait_for_execution(environment, started["executionArn"]) == "SUCCEEDED"

        code, detail = cli.json("run", "show", started["runId"], *table)
        outcomes = {line["email"]: line["outcome"] for line in detail["mailboxes"]}
        assert outcomes == {"user003@example.com": "EXPORTED", "user004@example.com": "EXPORTED"}
        assert environment.ledger.get_run(ORG, started["runId"]).get("forecast") is None
        code, listed = cli.json("runs", *table)
        assert next(run for run in listed["runs"] if run["runId"] == started["runId"])["requestedMailboxes"] == 2

        # WHEN a named mailbox has been deleted from WorkMail since the ledger saw it THEN the run says so
        gone = {**user004, "SK": "MAILBOX#gone-entity", "entityId": "gone-entity", "email": "gone@example.com"}
        environment.ledger.put_items([gone])
        code, started = cli.json("start", *source, "-m", "gone@example.com", "-m", "user005@example.com")
        assert code == 0 and wait_for_execution(environment, started["executionArn"]) == "SUCCEEDED"
        code, detail = cli.json("run", "show", started["runId"], *table)
        lines = {line["email"]: line for line in detail["mailboxes"]}
        assert lines["user005@example.com"]["outcome"] == "EXPORTED"
        assert lines["gone@example.com"]["outcome"] == "SKIPPED"
        assert "no longer lists" in lines["gone@example.com"]["reason"]

        # WHEN one named mailbox was exported minutes ago THEN the answer says the run leaves it to the next night
        environment.clock.advance(60)
        answer = cli("start", *source, "-m", "user005@example.com", "-m", "user006@example.com", columns=300)
        assert answer.exit_code == 0
        assert "1 mailbox(es) are inside WorkMail's 24-hour window for longer than that" in answer.stdout
        assert "the run waits for them" not in answer.stdout
        execution_arn = answer.stdout.split("execution: ")[1].split()[0]
        assert wait_for_execution(environment, execution_arn) == "SUCCEEDED"
        run_id = execution_arn.split(f"{ORG}-")[-1]
        code, detail = cli.json("run", "show", run_id, *table)
        outcomes = {line["email"]: line["outcome"] for line in detail["mailboxes"]}
        assert outcomes == {"user005@example.com": "SKIPPED", "user006@example.com": "EXPORTED"}


def test_a_mailbox_gone_from_workmail_says_why_and_stops_counting_once_no_longer_listed(cli, tmp_path):
    # user014 is deleted a minute into the night, before its export starts (the smallest go last)
    deleted = {"entity_changes": [{"entity": "user014", "state": "DELETED", "at": "+1m"}]}
    with open_environment(tmp_path, scenario(organization(users=22, faults=deleted))) as environment:
        table = ["--table", environment.stack.outputs["LedgerTableName"]]
        environment.run_nightly()

        # THEN the views say why it has no export, until the next listing records its state
        code, listed = cli.json("mailboxes", *table)
        gone = next(line for line in listed["mailboxes"] if line["email"] == "user014@example.com")
        assert gone["lastOutcome"] == "SKIPPED" and "gone or disabled since the run was planned" in gone["lastError"]
        code, covered = cli.json("coverage", *table)
        (missing,) = covered["organizations"][0]["missing"]
        assert "gone or disabled" in missing["lastError"]

        # GIVEN a mailbox the ledger knows that WorkMail has since purged: it lists it no more
        user000 = next(m for m in environment.ledger.mailboxes(ORG) if m["email"] == "user000@example.com")
        purged = {**user000, "SK": "MAILBOX#purged-entity", "entityId": "purged-entity", "email": "purged@example.com"}
        environment.ledger.put_items([purged])

        # WHEN the next night lists the organization THEN the deleted and the purged mailbox need no export
        environment.clock.advance(DAY_AND_AN_HOUR)
        second = environment.run_nightly()
        tasks = {task["email"]: task for task in second.organizations[0].tasks}
        assert tasks["purged@example.com"]["status"] == "SKIPPED"
        assert "no longer lists this mailbox" in tasks["purged@example.com"]["reason"]
        code, covered = cli.json("coverage", *table)
        assert code == 0 and covered["eligible"] == 21 and covered["covered"] == 21

        # AND a third night does not report the purged mailbox again
        environment.clock.advance(DAY_AND_AN_HOUR)
        third = environment.run_nightly()
        assert "purged@example.com" not in {task["email"] for task in third.organizations[0].tasks}


@pytest.mark.parametrize("forgotten", [False, True])
def test_a_run_left_open_by_an_ended_execution_does_not_block_a_start(cli, tmp_path, forgotten):
    with open_environment(tmp_path, scenario(organization(users=3))) as environment:
        source = stack_options(environment)
        night = environment.run_nightly()
        environment.clock.advance(DAY_AND_AN_HOUR)

        # GIVEN a run the ledger holds open, whose execution has ended (as StopExecution leaves it),
        # or is one Step Functions has forgotten (closed executions go after 90 days)
        ended = next(item for item in night.executions if item["name"].startswith(ORG))["executionArn"]
        execution_arn = ended + "-forgotten" if forgotten else ended
        left_open = {"organizationId": ORG, "runId": "manual-20261204T010000Z", "status": "RUNNING", "counts": {}}
        environment.ledger.create_run({**left_open, "startedAt": "2026-12-04T01:00:00Z", "executionArn": execution_arn})
        code, status = cli.json("status", *source)
        problems = " ".join(status["organizations"][0]["problems"])
        assert code == 1 and "it is stuck" in problems
        assert ("no longer known to Step Functions" in problems) == forgotten

        # WHEN an operator starts a run THEN it starts and exports, since nothing carries the other on
        code, started = cli.json("start", *source)
        assert code == 0 and started["started"]
        assert wait_for_execution(environment, started["executionArn"]) == "SUCCEEDED"
        assert environment.ledger.get_run(ORG, started["runId"])["counts"]["exported"] == 3


def test_of_two_starts_at_the_same_moment_at_most_one_goes_on(cli, tmp_path, monkeypatch):
    with open_environment(tmp_path, scenario(organization(users=3))) as environment:
        source = stack_options(environment)
        environment.run_nightly()
        environment.clock.advance(DAY_AND_AN_HOUR)

        # GIVEN a rival start that records its run just after this one found none open
        rival = {"organizationId": ORG, "runId": "manual-20261204T235959Z", "status": "REQUESTED"}
        record_run = Ledger.create_run

        def rival_records_first(ledger, run):
            if run["runId"] != rival["runId"]:
                monkeypatch.setattr(Ledger, "create_run", record_run)
                record_run(ledger, {**rival, "startedAt": run["startedAt"]})
            return record_run(ledger, run)

        monkeypatch.setattr(Ledger, "create_run", rival_records_first)

        # WHEN this start records its own run THEN it sees the rival, withdraws and starts nothing
        refused = cli("start", *source)
        assert refused.exit_code == 1
        assert f"Run {rival['runId']} of {ORG} is REQUESTED" in refused.stderr
        open_runs = [run["runId"] for run in environment.ledger.open_runs(ORG)]
        assert open_runs == [rival["runId"]]
        executions = environment.stepfunctions.list_executions(
            stateMachineArn=environment.stack.outputs["OrganizationBackupStateMachineArn"]
        )["executions"]
        assert not [execution for execution in executions if execution["status"] == "RUNNING"]
