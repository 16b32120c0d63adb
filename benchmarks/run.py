"""``make bench``: this design against two baselines, from 100 to 50,000 mailboxes, in one run.

Prints a table and writes benchmarks/results/latest.json. Small organizations run through
the real state machine definitions and handlers (moto's interpreter, the emulator, simulated
time); large ones through the model in benchmarks/model.py, calibrated on the interpreter
runs. Usage: python -m benchmarks.run [--sizes 100,1000,10000,50000] [--quick]
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import model
from benchmarks.interpreted import THIS_DESIGN, run_interpreted
from benchmarks.measure import Measurement
from workmail_backup.local.emulator import load_scenario

RESULTS = Path(__file__).resolve().parent / "results"
ORGANIZATION_ID = "m-0123456789abcdef0123456789abcdef"
# Real exports run slower than the controller's default guess (60 MB a minute), so the
# benchmark also shows that the controller learns the organization's rate.
EXPORT_SPEED = {"fixed_seconds": 120, "mb_per_minute": 20}
# Sizes at which each design runs through the interpreter; larger ones use the model.
BATCHES = "fixed batches of 10"
INTERPRETED = {THIS_DESIGN: (100, 1000), BATCHES: (100,), "Map, a poll loop per mailbox": (100,)}
QUICK_INTERPRETED = {THIS_DESIGN: (100,), BATCHES: (100,), "Map, a poll loop per mailbox": (100,)}


def scenario(mailboxes: int) -> dict:
    """Many small mailboxes and a long tail of large ones (lognormal, median 300 MB, up to 20 GB)."""
    return {
        "start": "2026-12-03T01:00:00Z",
        "region": "us-east-1",
        "export_speed": EXPORT_SPEED,
        "organizations": [
            {
                "id": ORGANIZATION_ID,
                "alias": "bench",
                "generate_users": {"count": mailboxes, "seed": 11, "median_mb": 300, "max_mb": 20_000},
            }
        ],
    }


def mailbox_sizes(mailboxes: int) -> list[float]:
    organization = load_scenario(scenario(mailboxes)).organizations[0]
    return [user.mailbox_mb for user in organization.all_users()]


def calibrate(measurement: Measurement) -> model.Calibration:
    """Per-iteration counts of the real definition, from an interpreter run of this design."""
    mailboxes = measurement.mailboxes
    passes = max((measurement.lambda_invocations - 3), 1)
    return model.Calibration(
        fixed_transitions=max(measurement.transitions - 3 * passes, 0),
        transitions_per_pass=3,
        events_per_pass=max(round(measurement.max_history_events / passes), 1),
        state_payload_bytes=measurement.peak_payload_bytes,
        dynamodb_writes_per_mailbox=measurement.dynamodb_writes / mailboxes,
        dynamodb_reads_per_mailbox=max(measurement.dynamodb_reads - 5 * passes, 0) / mailboxes,
    )


def run(sizes: list[int], interpreted: dict, log_dir: Path) -> list[Measurement]:
    console = Console(stderr=True)
    results: list[Measurement] = []
    for design, design_sizes in interpreted.items():
        for size in sorted(set(design_sizes) & set(sizes)):
            console.print(f"interpreter: {design}, {size:,} mailboxes ...")
            results.append(run_interpreted(design, scenario(size), log_dir))
            results[-1].check_limits()

    calibration = _calibration(results)
    for size in sizes:
        plan = model.mailbox_plan(mailbox_sizes(size), EXPORT_SPEED["fixed_seconds"], EXPORT_SPEED["mb_per_minute"])
        for simulate in (model.this_design, model.fixed_batches, model.per_mailbox_map):
            console.print(f"model: {simulate.__name__}, {size:,} mailboxes ...")
            results.append(simulate(plan, calibration))
    return results


def _calibration(results: list[Measurement]) -> model.Calibration:
    ours = [item for item in results if item.design == THIS_DESIGN and item.source == "interpreter"]
    calibration = calibrate(max(ours, key=lambda item: item.mailboxes)) if ours else model.Calibration()
    batches = [item for item in results if item.design == BATCHES and item.source == "interpreter"]
    if batches:
        calibration = replace(calibration, batch_state_payload_bytes=max(item.peak_payload_bytes for item in batches))
    return calibration


def print_table(results: list[Measurement]) -> None:
    table = Table(title="Nightly export orchestration: this design and two baselines (us-east-1 prices)")
    columns = [
        "mailboxes", "design", "source", "makespan / bound", "slot use", "transitions /mbx", "Lambda /mbx",
        "WorkMail /mbx", "peak payload B", "max history", "cost $", "Step Functions limits",
    ]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("design", "source", "Step Functions limits") else "right")
    for item in sorted(results, key=lambda item: (item.mailboxes, item.design, item.source)):
        table.add_row(
            f"{item.mailboxes:,}",
            item.design,
            item.source,
            f"{item.makespan_ratio:.3f}",
            f"{item.utilization:.1%}",
            f"{item.per_mailbox(item.transitions):.2f}",
            f"{item.per_mailbox(item.lambda_invocations):.2f}",
            f"{item.per_mailbox(item.workmail_calls):.2f}",
            f"{item.peak_payload_bytes:,}",
            f"{item.max_history_events:,}",
            f"{item.cost_dollars:.4f}",
            "; ".join(item.limits_broken) or "within limits",
        )
    Console(width=220).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000,50000", help="comma-separated organization sizes")
    parser.add_argument("--quick", action="store_true", help="interpreter runs at 100 mailboxes only")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]

    RESULTS.mkdir(parents=True, exist_ok=True)
    results = run(sizes, QUICK_INTERPRETED if arguments.quick else INTERPRETED, RESULTS)
    print_table(results)
    output = RESULTS / "latest.json"
    output.write_text(json.dumps([item.as_json() for item in results], indent=2))
    print(f"JSON: {output}")


if __name__ == "__main__":
    main()
