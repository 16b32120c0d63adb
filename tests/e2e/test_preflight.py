"""Preflight, end to end: each misconfiguration fails the run before any export, says what to fix,
and `workmail-backup doctor` reports the same."""

import json

import boto3
import pytest
from typer.testing import CliRunner

from tests.e2e.conftest import ORG, organization, scenario
from workmail_backup.cli import app


def _break_bucket(environment) -> None:
    boto3.client("s3").delete_bucket(Bucket=environment.stack.outputs["ExportBucketName"])


def _break_key(environment) -> None:
    # moto finds a key by id only, not by ARN.
    boto3.client("kms").disable_key(KeyId=environment.stack.outputs["KmsKeyArn"].rsplit("/", 1)[-1])


def _break_trust(environment) -> None:
    role_name = environment.stack.outputs["ExportRoleArn"].rsplit("/", 1)[-1]
    untrusted = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    boto3.client("iam").update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(untrusted))


MISCONFIGURATIONS = {
    "bucket": (_break_bucket, "does not exist"),
    "key": (_break_key, "Disabled, not Enabled"),
    "export role trust": (_break_trust, "does not trust export.workmail.amazonaws.com"),
}


def _assert_failed_before_any_export(environment, result, check: str, problem: str) -> None:
    run = result.organizations[0].run
    assert run["status"] == "FAILED"
    assert "PreflightFailedError" in run["error"]
    assert f"{check}: FAILED" in run["error"] and problem in run["error"] and "Fix:" in run["error"]
    assert environment.emulator.jobs(ORG) == []
    assert {execution["status"] for execution in result.executions if ORG[2:10] in execution["name"]} == {"FAILED"}


@pytest.mark.parametrize("check", sorted(MISCONFIGURATIONS))
def test_misconfiguration_fails_the_run_before_any_export(local_environment, check):
    breaks, problem = MISCONFIGURATIONS[check]
    with local_environment(scenario(organization(users=3))) as environment:
        breaks(environment)

        result = environment.run_nightly()

        _assert_failed_before_any_export(environment, result, check, problem)


def test_an_inactive_organization_fails_the_run_before_any_export(local_environment):
    with local_environment(scenario(organization(users=3, state="Inactive"))) as environment:
        result = environment.run_nightly()

        _assert_failed_before_any_export(environment, result, "organization", "is Inactive, not Active")


def test_doctor_passes_a_healthy_stack(local_environment):
    with local_environment(scenario(organization(users=1))) as environment:
        outcome = CliRunner().invoke(app, ["doctor", "--stack", environment.stack.stack_name])

    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.count(" ok ") == 5
    assert "FAILED" not in outcome.output


def test_doctor_names_the_failed_check_and_its_fix(local_environment):
    with local_environment(scenario(organization(users=1))) as environment:
        _break_key(environment)
        outcome = CliRunner().invoke(app, ["doctor", "--stack", environment.stack.stack_name])

    assert outcome.exit_code == 1
    assert "FAILED" in outcome.output and "Enable the key" in outcome.output


def test_doctor_answers_in_json_for_a_ci_check(local_environment):
    with local_environment(scenario(organization(users=1))) as environment:
        _break_key(environment)
        outcome = CliRunner().invoke(app, ["doctor", "--stack", environment.stack.stack_name, "--json"])

    answer = json.loads(outcome.stdout)
    assert outcome.exit_code == 1 and answer["healthy"] is False
    (checked,) = answer["organizations"]
    failed = [check for check in checked["checks"] if not check["passed"]]
    assert len(failed) == 1 and "Enable the key" in failed[0]["fix"]


def test_doctor_on_a_stack_that_is_not_a_backup_stack_says_so_in_one_line(local_environment):
    with local_environment(scenario(organization(users=1))) as environment:
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
        boto3.client("cloudformation").create_stack(StackName="unrelated", TemplateBody=json.dumps(template))
        unrelated = CliRunner().invoke(app, ["doctor", "--stack", "unrelated"])
        missing = CliRunner().invoke(app, ["doctor", "--stack", "no-such-stack"])
        assert environment.stack.stack_name != "unrelated"

    assert unrelated.exit_code == 2 and "is it a workmail-backup stack?" in unrelated.output
    assert "ExportBucketName" in unrelated.output and "Traceback" not in unrelated.output
    assert missing.exit_code == 2 and "Stack no-such-stack was not found" in missing.output


def test_an_organization_workmail_cannot_find_fails_on_that_check_alone(local_environment):
    missing = {"errors": [{"operation": "*", "error": "OrganizationNotFoundException", "times": None}]}
    with local_environment(scenario(organization(users=3, faults=missing))) as environment:
        result = environment.run_nightly()

        _assert_failed_before_any_export(environment, result, "organization", "was not found")
        # The role trusts this organization's ARN: nothing to fix there.
        assert "export role trust: FAILED" not in result.organizations[0].run["error"]
