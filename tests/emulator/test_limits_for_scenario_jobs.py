"""Jobs a scenario lets someone else start obey WorkMail's limits like any other start."""

import pytest

from workmail_backup.local.emulator import ScenarioError, load_scenario
from workmail_backup.local.emulator.organization import build_organizations

ORG = "m-0123456789abcdef0123456789abcdef"


def _organization(jobs: list[dict], users: int = 15):
    scenario = load_scenario(
        {
            "start": "2026-12-03T01:00:00Z",
            "organizations": [
                {
                    "id": ORG,
                    "alias": "limits",
                    "users": [{"name": f"u{index}", "email": f"u{index}@example.com"} for index in range(users)],
                    "jobs": jobs,
                }
            ],
        }
    )
    return scenario, build_organizations(scenario)[ORG]


def test_more_than_ten_jobs_running_at_the_start_is_a_scenario_error():
    jobs = [{"entity": f"u{index}", "started": "-5m", "duration": "1h"} for index in range(11)]

    with pytest.raises(ScenarioError, match=r"organizations\[0\].jobs: 11 jobs run at the scenario's start"):
        _organization(jobs)


def test_a_later_job_is_refused_when_ten_run_at_its_start():
    jobs = [{"entity": f"u{index}", "started": "-5m", "duration": "1h"} for index in range(10)]
    jobs.append({"entity": "u12", "started": "+10m", "duration": "10m"})
    scenario, organization = _organization(jobs)

    later = scenario.start.replace(minute=30)

    assert organization.running_count(later) == 10
    assert [job.entity_id for job in organization.refused_jobs] == [organization.find("u12").entity_id]


def test_a_later_job_for_a_mailbox_exported_in_the_last_day_is_refused():
    jobs = [
        {"entity": "u1", "started": "-2h", "duration": "10m"},
        {"entity": "u1", "started": "+1h", "duration": "10m"},
        {"entity": "u2", "started": "+1h", "duration": "10m"},
    ]
    scenario, organization = _organization(jobs)

    started = organization.started_jobs(scenario.start.replace(hour=3))

    assert [job.entity_id for job in organization.refused_jobs] == [organization.find("u1").entity_id]
    assert organization.find("u2").entity_id in {job.entity_id for job in started}


def test_two_jobs_of_one_mailbox_within_a_day_before_the_start_is_a_scenario_error():
    jobs = [{"entity": "u1", "started": "-1h", "duration": "3h"}, {"entity": "u1", "started": "-30m", "duration": "3h"}]

    with pytest.raises(ScenarioError, match=r"organizations\[0\].jobs\[1\]: starts within 24 hours of another job"):
        _organization(jobs)


def test_jobs_of_one_mailbox_a_day_apart_before_the_start_are_both_kept():
    jobs = [{"entity": "u1", "started": "-3d", "duration": "1h"}, {"entity": "u1", "started": "-1h", "duration": "3h"}]

    _, organization = _organization(jobs)

    assert len(organization.jobs) == 2
