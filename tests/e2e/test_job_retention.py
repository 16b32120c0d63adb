"""Job records carry the TTL attribute only when the deployment limits their retention."""

from datetime import timedelta

from mailbox_backup.ledger import parse_iso
from tests.e2e.conftest import ORG, organization, scenario


def _job_records(environment, result) -> list[dict]:
    return [
        job
        for task in result.organizations[0].tasks
        for job in environment.ledger.jobs_of_mailbox(ORG, task["entityId"])
    ]


def test_job_records_expire_after_the_configured_days(local_environment):
    with local_environment(scenario(organization(users=2)), JobRecordRetentionDays="30") as environment:
        result = environment.run_nightly()

        jobs = _job_records(environment, result)
        assert len(jobs) == 2
        for job in jobs:
            expected = parse_iso(job["startedAt"]) + timedelta(days=30)
            assert int(job["expiresAt"]) == int(expected.timestamp())


def test_job_records_are_kept_by_default(local_environment):
    with local_environment(scenario(organization(users=2))) as environment:
        result = environment.run_nightly()

        jobs = _job_records(environment, result)
        assert len(jobs) == 2
        assert all("expiresAt" not in job for job in jobs)
