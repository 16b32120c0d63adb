"""The report's charts, drawn by pygal as inline SVG that needs no script to display."""

from datetime import datetime

import pygal
from pygal.style import CleanStyle

# pygal links its tooltip script from the web by default; the report must open offline.
_OFFLINE = {"js": [], "disable_xml_declaration": True, "style": CleanStyle, "width": 860, "height": 320}
AGE_BUCKETS = (("< 1 day", 1), ("1-2 days", 2), ("2-7 days", 7), ("7-30 days", 30), ("> 30 days", None))


def coverage_over_time(series: list[tuple[str, float]]) -> str:
    chart = pygal.Line(
        title="Mailboxes with a verified export (%)",
        range=(0, 100),
        show_legend=False,
        x_label_rotation=30,
        show_minor_x_labels=False,
        **_OFFLINE,
    )
    chart.x_labels = [day for day, _ in series]
    chart.x_labels_major = chart.x_labels[:: max(len(series) // 10, 1)]
    chart.add("coverage", [share for _, share in series])
    return chart.render(is_unicode=True)


def age_of_last_export(ages_in_days: list[float | None]) -> str:
    """How many mailboxes' last verified export falls in each age bracket, and how many have none."""
    chart = pygal.Bar(title="Age of the last verified export", show_legend=False, **_OFFLINE)
    counts = [0] * (len(AGE_BUCKETS) + 1)
    for age in ages_in_days:
        counts[_bucket(age)] += 1
    chart.x_labels = [label for label, _ in AGE_BUCKETS] + ["never"]
    chart.add("mailboxes", counts)
    return chart.render(is_unicode=True)


def _bucket(age: float | None) -> int:
    if age is None:
        return len(AGE_BUCKETS)
    for index, (_, upper) in enumerate(AGE_BUCKETS):
        if upper is None or age < upper:
            return index
    return len(AGE_BUCKETS) - 1


def slot_timeline(run_id: str, jobs: list[dict], run_start: datetime) -> str:
    """One line per export, on the slot it occupied, hours after the run started."""
    chart = pygal.XY(
        title=f"Export slots during {run_id} (hours after the start)",
        show_legend=False,
        dots_size=1,
        y_title="slot",
        **{**_OFFLINE, "height": 360},
    )
    for job in jobs:
        start = (job["start"] - run_start).total_seconds() / 3600
        end = (job["end"] - run_start).total_seconds() / 3600
        points = [(round(start, 3), job["slot"]), (round(end, 3), job["slot"])]
        chart.add(job["label"], points, stroke_style={"width": 10, "linecap": "butt"})
    return chart.render(is_unicode=True)
