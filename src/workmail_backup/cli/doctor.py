"""``workmail-backup doctor``: the preflight checks of a deployed stack, on demand.

Runs the same checks as the PreflightFunction (mailbox_backup.preflight) for each organization
of the stack, prints one table, and exits 1 if any check failed, 2 if the stack cannot be read.
"""

import dataclasses
import json
import re
from typing import Annotated

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mailbox_backup.preflight import AwsClients, CheckResult, ExportConfiguration, run_checks
from workmail_backup.cli.app import app, console, errors
from workmail_backup.ops.backend import AT_A_TERMINAL, aws_setup_explained, read_stack, use_aws_settings
from workmail_backup.ops.errors import OperationsError

FAILED, UNANSWERED = 1, 2
DEFAULT_EXPORT_PREFIX = "workmail-exports"
ORGANIZATION_ID = re.compile(r"m-[0-9a-f]{32}")


@app.command("doctor")
def doctor(
    stack: Annotated[str, typer.Option("--stack", envvar="WORKMAIL_BACKUP_STACK", help="Deployed stack name.")],
    organization: Annotated[
        list[str] | None, typer.Option("--org", "--organization", help="Check only this organization (repeatable).")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: AWS_REGION, profile).")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile (default: AWS_PROFILE).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Check each organization, the bucket, the key and the export role before a run needs them."""
    if not stack.strip():
        errors.print("[red]Error:[/red] --stack is empty; give the name given to `sam deploy`.")
        raise typer.Exit(UNANSWERED)
    use_aws_settings(region, profile)

    try:
        with aws_setup_explained():
            configuration, organization_ids = read_export_configuration(stack)
            checked = organization or organization_ids
            services = ("workmail", "s3", "kms", "iam", "sts")
            aws = AwsClients(*(boto3.client(service, config=AT_A_TERMINAL) for service in services))
            results = {org: run_checks(aws, org, configuration) for org in checked}
    except (ClientError, BotoCoreError, OperationsError) as error:
        errors.print(f"[red]Cannot check stack {escape(str(stack))}:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(UNANSWERED) from None

    failed = [result for checks in results.values() for result in checks if not result.passed]
    if as_json:
        print(json.dumps(results_json(results, healthy=not failed), indent=2))
        raise typer.Exit(FAILED if failed else 0)
    console.print(results_table(results))
    if failed:
        errors.print(f"[red]{len(failed)} check(s) failed;[/red] fix them before the next run.", soft_wrap=True)
    raise typer.Exit(FAILED if failed else 0)


def read_export_configuration(stack: str) -> tuple[ExportConfiguration, list[str]]:
    """The export configuration and organization ids of a deployed stack, from its outputs and parameters."""
    outputs, parameters = read_stack(stack, required_outputs=("ExportBucketName", "KmsKeyArn", "ExportRoleArn"))

    configuration = ExportConfiguration(
        bucket=outputs["ExportBucketName"],
        prefix=parameters.get("ExportPrefix") or DEFAULT_EXPORT_PREFIX,
        kms_key_arn=outputs["KmsKeyArn"],
        role_arn=outputs["ExportRoleArn"],
    )
    # AWS gives a list parameter as "a,b"; moto as the repr of a Python list. The ids are found in either.
    organization_ids = ORGANIZATION_ID.findall(parameters.get("OrganizationIds", ""))
    return configuration, organization_ids


def results_json(results: dict[str, list[CheckResult]], healthy: bool) -> dict:
    return {
        "organizations": [
            {"organizationId": organization_id, "checks": [dataclasses.asdict(check) for check in checks]}
            for organization_id, checks in results.items()
        ],
        "healthy": healthy,
    }


def results_table(results: dict[str, list[CheckResult]]) -> Table:
    table = Table(title="Preflight checks", show_lines=True)
    for column in ("Organization", "Check", "Result", "What was found", "How to fix it"):
        table.add_column(column, overflow="fold")

    for organization_id, checks in results.items():
        for result in checks:
            verdict = Text("ok", style="green") if result.passed else Text("FAILED", style="red")
            # What AWS said is shown as it came, never read as Rich markup.
            table.add_row(organization_id, result.name, verdict, Text(result.detail), Text(result.fix))
    return table
