"""An emulator of the Amazon WorkMail API for local runs and tests.

WorkMail has no emulator elsewhere, so the project owns one: it speaks the service's JSON
protocol on the loopback interface, validates every request against botocore's model,
enforces the export limits, advances jobs with an injected clock, and writes export
output to S3 (moto in local mode).

    scenario = load_scenario("scenarios/demo.yaml")
    emulator = WorkMailEmulator(scenario, now=clock)
    url = emulator.start()
"""

from .organization import ExportJob
from .scenario import Scenario, ScenarioError, load_scenario
from .server import WorkMailEmulator

__all__ = ["ExportJob", "Scenario", "ScenarioError", "WorkMailEmulator", "load_scenario"]
