"""Against AWS that cannot be reached or used, the commands answer in one line and soon."""

import socket
import threading
from collections.abc import Iterator

import boto3
import pytest

ATTEMPTS_AT_A_TERMINAL = 3


@pytest.fixture
def aws_settings(monkeypatch) -> None:
    """Fake credentials and a region, restored after the test (the commands write the region)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    # boto3's default session keeps the credentials it first found; each test starts without one.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def hanging_up_endpoint(monkeypatch) -> Iterator[list[int]]:
    """An endpoint that accepts each connection and closes it at once; counts the attempts."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = [0]

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted[0] += 1
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    yield accepted
    listener.close()


def test_an_endpoint_that_hangs_up_is_reported_after_a_few_attempts(cli, aws_settings, hanging_up_endpoint):
    result = cli("runs", "--table", "ledger")

    assert result.exit_code == 2 and result.stderr.startswith("AWS error:")
    assert result.stderr.strip().count("\n") == 0
    # The handlers' clients try eight times with backoff; a person waiting at a terminal gets three.
    assert hanging_up_endpoint[0] == ATTEMPTS_AT_A_TERMINAL


def test_no_credentials_are_named_with_the_option_that_gives_them(cli, aws_settings, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    result = cli("status", "--table", "ledger")

    assert result.exit_code == 2 and "No AWS credentials found; pass --profile or set AWS_PROFILE." in result.stderr


def test_no_region_is_named_with_the_option_that_gives_it(cli, aws_settings, monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    result = cli("status", "--table", "ledger")

    assert result.exit_code == 2 and "No AWS region is set; pass --region or set AWS_REGION." in result.stderr
