"""Request validation against botocore's own WorkMail service model.

The service refuses a request that breaks its model (a missing member, a string too long,
a prefix with a character outside its pattern) before looking at anything else. botocore
checks only some of this on the client side (required members, types, minimums), so a
client that passes botocore's checks can still be refused by the service; the emulator
must refuse it too, with the same kind of message.
"""

import re
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

_MAX_REPORTED = 10


@lru_cache(maxsize=1)
def workmail_model() -> ServiceModel:
    """The WorkMail service model shipped with the installed botocore."""
    return botocore.session.get_session().get_service_model("workmail")


class RequestValidator:
    """Checks a request's parameters against one operation's input shape."""

    def __init__(self, model: ServiceModel | None = None):
        self._model = model or workmail_model()

    def operation(self, name: str) -> OperationModel | None:
        """The operation model, or None if WorkMail has no operation of that name."""
        return self._model.operation_model(name) if name in self._model.operation_names else None

    def problems(self, operation_name: str, params: Any) -> list[str]:
        """Every constraint ``params`` breaks, as AWS words them ("Value ... at 'X' failed to ...")."""
        operation = self.operation(operation_name)
        if operation is None or operation.input_shape is None:
            return []
        problems: list[str] = []
        _check(operation.input_shape, params, "", problems)
        return problems


def validation_message(problems: list[str]) -> str:
    """Join problems the way AWS's ValidationException does."""
    shown = problems[:_MAX_REPORTED]
    noun = "error" if len(problems) == 1 else "errors"
    return f"{len(problems)} validation {noun} detected: " + "; ".join(shown)


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    checker = _CHECKERS.get(shape.type_name)
    if checker is not None:
        checker(shape, value, path, problems)


def _check_structure(shape: StructureShape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(_failed(value, path or shape.name, "Member must be a structure"))
        return

    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(
                f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null"
            )

    for name, member_value in value.items():
        member = shape.members.get(name)
        if member is None:
            problems.append(f"Member '{_join(path, name)}' is not part of {shape.name}")
        elif member_value is not None:
            _check(member, member_value, _join(path, name), problems)


def _check_string(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, str):
        problems.append(_failed(value, path, "Member must be a string"))
        return

    _check_length(shape, len(value), value, path, problems)
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        problems.append(_failed(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"))

    pattern = shape.metadata.get("pattern")
    regex = _compiled(pattern) if pattern else None
    # The model's patterns are written to match the whole value ("[A-Za-z0-9!_.*'()/-]+").
    if regex is not None and regex.fullmatch(value) is None:
        problems.append(_failed(value, path, f"Member must satisfy regular expression pattern: {pattern}"))


def _check_list(shape: ListShape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, list):
        problems.append(_failed(value, path, "Member must be a list"))
        return

    _check_length(shape, len(value), value, path, problems)
    for index, item in enumerate(value):
        _check(shape.member, item, f"{path}.{index + 1}.member", problems)


def _check_map(shape: MapShape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(_failed(value, path, "Member must be a map"))
        return

    _check_length(shape, len(value), value, path, problems)
    for key, item in value.items():
        _check(shape.key, key, f"{path}.key", problems)
        _check(shape.value, item, f"{path}.{key}", problems)


def _check_integer(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(_failed(value, path, "Member must be an integer"))
        return
    _check_range(shape, value, path, problems)


def _check_number(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(_failed(value, path, "Member must be a number"))
        return
    _check_range(shape, value, path, problems)


def _check_boolean(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, bool):
        problems.append(_failed(value, path, "Member must be a boolean"))


def _check_timestamp(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.append(_failed(value, path, "Member must be a timestamp"))


def _check_length(shape: Shape, length: int, value: Any, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        problems.append(_failed(value, path, f"Member must have length greater than or equal to {low}"))
    if high is not None and length > high:
        problems.append(_failed(value, path, f"Member must have length less than or equal to {high}"))


def _check_range(shape: Shape, value: float, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(_failed(value, path, f"Member must have value greater than or equal to {low}"))
    if high is not None and value > high:
        problems.append(_failed(value, path, f"Member must have value less than or equal to {high}"))


_CHECKERS = {
    "structure": _check_structure,
    "string": _check_string,
    "list": _check_list,
    "map": _check_map,
    "integer": _check_integer,
    "long": _check_integer,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "timestamp": _check_timestamp,
}


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        # A pattern Python cannot read is skipped rather than refusing every request.
        return None


def _failed(value: Any, path: str, constraint: str) -> str:
    shown = value if not isinstance(value, str) or len(value) <= 200 else value[:200] + "..."
    return f"Value {shown!r} at '{path}' failed to satisfy constraint: {constraint}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
