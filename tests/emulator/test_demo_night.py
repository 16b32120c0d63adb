"""The demo scenario, driven through a whole night by a simple client that keeps 10 slots busy."""

from datetime import timedelta
from pathlib import Path

from botocore.exceptions import ClientError

from workmail_backup.local.emulator import WorkMailEmulator, load_scenario

from .conftest import ORG, START, FakeClock, workmail_client

DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.yaml"
TICK = timedelta(minutes=5)


def exportable(client) -> list[str]:
    users = client.get_paginator("list_users").paginate(OrganizationId=ORG)
    resources = client.get_paginator("list_resources").paginate(OrganizationId=ORG)
    ids = [
        user["Id"]
        for page in users
        for user in page["Users"]
        if user["State"] == "ENABLED" and user["UserRole"] == "USER"
    ]
    return ids + [r["Id"] for page in resources for r in page["Resources"] if r["State"] == "ENABLED"]


def recent_jobs(client) -> list[dict]:
    jobs, arguments = [], {"OrganizationId": ORG}
    while True:
        page = client.list_mailbox_export_jobs(**arguments)
        jobs += page["Jobs"]
        if "NextToken" not in page:
            return jobs
        arguments["NextToken"] = page["NextToken"]


def start_until_refused(client, aws, waiting: list[str]) -> None:
    while waiting:
        try:
            client.start_mailbox_export_job(
                ClientToken=f"demo-{waiting[0]}", EntityId=waiting[0], **aws.export_arguments(S3Prefix="demo")
            )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "LimitExceededException"
            return
        waiting.pop(0)


def test_the_demo_night_exports_every_mailbox_in_a_few_hours_with_ten_slots(aws):
    clock = FakeClock()
    with WorkMailEmulator(load_scenario(DEMO), now=clock) as emulator:
        client = workmail_client(emulator.url)
        exported_earlier = {job["EntityId"] for job in recent_jobs(client)}
        waiting = [entity for entity in exportable(client) if entity not in exported_earlier]
        planned = set(waiting)

        while waiting or any(job["State"] == "RUNNING" for job in recent_jobs(client)):
            start_until_refused(client, aws, waiting)
            clock.advance(seconds=TICK.total_seconds())

        finished = {job["EntityId"]: job["State"] for job in recent_jobs(client)}
        night = clock.current - START

        assert len(planned) > 180
        assert all(finished[entity] == "COMPLETED" for entity in planned)
        assert emulator.peak_running(ORG) == 10
        assert timedelta(hours=3) < night < timedelta(hours=8)
        assert aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="demo/")["KeyCount"] == 2 * len(planned)
