"""Deterministic mailbox populations for scenarios that ask for many users.

Real organizations hold many small mailboxes and a long tail of large ones, and the tail
is what makes a night long. A lognormal distribution around the median, clipped to a
maximum, has that shape. The same seed always gives the same people and sizes.
"""

import math
import random
import uuid

_ID_NAMESPACE = uuid.UUID("6f1c7a52-3d55-4a53-9a43-7d1f0e0c2b11")

_FIRST_NAMES = (
    "amelia",
    "bruno",
    "chloe",
    "dmitri",
    "elena",
    "farid",
    "grace",
    "hiro",
    "ines",
    "jonas",
    "kavya",
    "liam",
    "maya",
    "nils",
    "olga",
    "pablo",
    "quinn",
    "rosa",
    "samir",
    "tara",
    "umar",
    "vera",
    "wen",
    "ximena",
    "yusuf",
    "zoe",
)
_LAST_NAMES = (
    "adams",
    "berg",
    "costa",
    "dubois",
    "eriksen",
    "fischer",
    "garcia",
    "horvat",
    "ito",
    "jensen",
    "kowalski",
    "lopez",
    "moreau",
    "novak",
    "okafor",
    "petrov",
    "quist",
    "rossi",
    "silva",
    "tanaka",
    "ueda",
    "varga",
    "weber",
    "xu",
    "yilmaz",
    "zeller",
)


def user_id(organization_id: str, name: str) -> str:
    """Derive the id WorkMail would show for a user, stable across runs of the same scenario."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{organization_id}/user/{name.lower()}"))


def resource_id(organization_id: str, name: str) -> str:
    """Derive a resource id of the service's form ``r-`` followed by 32 hex digits."""
    return "r-" + uuid.uuid5(_ID_NAMESPACE, f"{organization_id}/resource/{name.lower()}").hex


def job_id(organization_id: str, key: str) -> str:
    """Derive a job id from what makes a job unique (its ClientToken, or its scenario entry)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{organization_id}/job/{key}"))


def generated_people(count: int, seed: int) -> list[tuple[str, str]]:
    """Return ``count`` distinct (user name, display name) pairs chosen by ``seed``."""
    rng = random.Random(f"names/{seed}")
    people: list[tuple[str, str]] = []
    used: set[str] = set()

    for _ in range(count):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        name = f"{first}.{last}"
        suffix = 2
        while name in used:
            name = f"{first}.{last}{suffix}"
            suffix += 1
        used.add(name)
        people.append((name, f"{first.title()} {last.title()}"))
    return people


def mailbox_sizes(count: int, seed: int, median_mb: float, max_mb: float, min_mb: float, spread: float) -> list[float]:
    """Draw ``count`` mailbox sizes in MB: lognormal around ``median_mb``, clipped to [min_mb, max_mb]."""
    rng = random.Random(f"sizes/{seed}")
    mu = math.log(median_mb)
    return [round(min(max_mb, max(min_mb, rng.lognormvariate(mu, spread))), 1) for _ in range(count)]


def special_positions(count: int, seed: int, groups: dict[str, int]) -> dict[int, str]:
    """Pick disjoint positions among ``count`` users for each group (e.g. 5 disabled, 2 deleted).

    Returns position -> group name.
    """
    rng = random.Random(f"states/{seed}")
    wanted = sum(groups.values())
    positions = rng.sample(range(count), wanted)
    chosen: dict[int, str] = {}

    for group, size in groups.items():
        for position in positions[:size]:
            chosen[position] = group
        positions = positions[size:]
    return chosen
