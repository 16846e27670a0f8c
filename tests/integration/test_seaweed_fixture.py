"""The SeaweedS3 test helper: a real, authenticated S3 server on loopback that leaves nothing behind when stopped."""

from __future__ import annotations

import socket
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from cairn.stack.seaweed import LOOPBACK, SeaweedS3, SeaweedStartError

pytestmark = pytest.mark.integration

NO_RETRIES = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})


@pytest.fixture(scope="module")
def server() -> Iterator[SeaweedS3]:
    """A server of this module's own: the helper's lifecycle is what these tests are about."""
    with SeaweedS3() as running:
        running.create_bucket("roundtrip")
        yield running


def _client_with(server: SeaweedS3, access_key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=server.region,
        config=NO_RETRIES,
    )


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _processes_mentioning(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_put_then_get_returns_the_same_bytes(server: SeaweedS3) -> None:
    """An object written through the helper's client reads back byte for byte, with its length."""
    client = server.client()
    body = bytes(range(256)) * 64
    client.put_object(Bucket="roundtrip", Key="docs/a.bin", Body=body)

    assert client.get_object(Bucket="roundtrip", Key="docs/a.bin")["Body"].read() == body
    assert client.head_object(Bucket="roundtrip", Key="docs/a.bin")["ContentLength"] == len(body)


def test_every_listener_is_on_loopback(server: SeaweedS3) -> None:
    """weed mini listens only on 127.0.0.1 (S3, master, volume, filer, their gRPC ports), never on 0.0.0.0."""
    assert server.pid is not None
    listening = [c.laddr for c in psutil.Process(server.pid).net_connections("inet") if c.status == psutil.CONN_LISTEN]

    assert {address.ip for address in listening} == {LOOPBACK}
    assert server.s3_port in {address.port for address in listening}


def test_unsigned_request_is_refused(server: SeaweedS3) -> None:
    """Anonymous requests get 403 AccessDenied, for reads as well as listings."""
    anonymous = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        config=NO_RETRIES.merge(Config(signature_version=UNSIGNED)),
    )
    server.client().put_object(Bucket="roundtrip", Key="private.txt", Body=b"secret")

    with pytest.raises(ClientError) as listing:
        anonymous.list_buckets()
    with pytest.raises(ClientError) as reading:
        anonymous.get_object(Bucket="roundtrip", Key="private.txt")

    assert _error_code(listing) == ("AccessDenied", 403)
    assert _error_code(reading) == ("AccessDenied", 403)


def test_wrong_secret_is_refused(server: SeaweedS3) -> None:
    """The right access key signed with the wrong secret is refused with SignatureDoesNotMatch."""
    forger = _client_with(server, server.access_key, "not-the-secret")

    with pytest.raises(ClientError) as excinfo:
        forger.get_object(Bucket="roundtrip", Key="docs/a.bin")

    assert _error_code(excinfo) == ("SignatureDoesNotMatch", 403)


def test_unknown_access_key_is_refused(server: SeaweedS3) -> None:
    """An access key the server never issued is refused with InvalidAccessKeyId."""
    stranger = _client_with(server, "AKIASTRANGER0000", "whatever")

    with pytest.raises(ClientError) as excinfo:
        stranger.list_buckets()

    assert _error_code(excinfo) == ("InvalidAccessKeyId", 403)


def test_internal_http_ports_do_not_bypass_s3_credentials(server: SeaweedS3) -> None:
    """Bucket data cannot be read, written or deleted through the filer, master or volume HTTP ports, only S3."""
    client = server.client()
    client.put_object(Bucket="roundtrip", Key="behind-filer.txt", Body=b"secret")
    filer = f"http://{LOOPBACK}:{server.filer_port}/buckets/roundtrip"
    attempts = [
        urllib.request.Request(f"{filer}/behind-filer.txt"),
        urllib.request.Request(f"{filer}/injected.txt", data=b"x", method="PUT"),
        urllib.request.Request(f"{filer}/behind-filer.txt", method="DELETE"),
        urllib.request.Request(f"http://{LOOPBACK}:{server.master_port}/col/delete?collection=roundtrip"),
        urllib.request.Request(f"http://{LOOPBACK}:{server.volume_port}/1,01637037d6", data=b"x", method="PUT"),
    ]

    refusals = []
    for request in attempts:
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            urllib.request.urlopen(request, timeout=5)
        refusals.append(excinfo.value.code)

    assert all(400 <= code < 500 for code in refusals), refusals
    assert client.get_object(Bucket="roundtrip", Key="behind-filer.txt")["Body"].read() == b"secret"
    with pytest.raises(ClientError):
        client.head_object(Bucket="roundtrip", Key="injected.txt")


def test_write_to_a_missing_bucket_fails(server: SeaweedS3) -> None:
    """Buckets are not created on first write (as on AWS): a put into an unknown bucket is NoSuchBucket."""
    with pytest.raises(ClientError) as excinfo:
        server.client(NO_RETRIES).put_object(Bucket="never-created", Key="k", Body=b"x")

    assert _error_code(excinfo) == ("NoSuchBucket", 404)


def test_repr_never_shows_the_secret_key(server: SeaweedS3) -> None:
    """The helper prints its endpoint and access key, and `<redacted>` for the secret."""
    text = repr(server)

    assert server.secret_key not in text
    assert "<redacted>" in text
    assert server.endpoint_url in text


def test_stop_leaves_no_process_socket_or_directory() -> None:
    """After stop(): no weed process of this server, its port closed, its /tmp gRPC sockets and its data dir gone."""
    instance = SeaweedS3().start()
    root, port = instance.root, instance.s3_port
    assert root is not None
    assert port is not None
    grpc_sockets = instance.grpc_sockets
    assert any(path.exists() for path in grpc_sockets), "weed mini should have created its /tmp gRPC sockets"
    assert _processes_mentioning(root), "the server should be running before stop()"

    instance.stop()
    instance.stop()  # a second stop is harmless

    assert _processes_mentioning(root) == []
    assert not root.exists()
    assert [path for path in grpc_sockets if path.exists()] == []
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect((LOOPBACK, port))
    assert not instance.running


def test_a_server_that_dies_at_startup_is_reported_with_its_log(tmp_path: Path) -> None:
    """When weed exits during startup, start() raises SeaweedStartError carrying the exit code and the log tail."""
    fake_weed = tmp_path / "weed"
    fake_weed.write_text("#!/bin/sh\necho 'port allocation failed: cannot bind'\nexit 3\n")
    fake_weed.chmod(fake_weed.stat().st_mode | stat.S_IXUSR)
    instance = SeaweedS3(weed=fake_weed, startup_timeout=10)

    with pytest.raises(SeaweedStartError, match=r"(?s)exited with code 3.*port allocation failed"):
        instance.start()

    assert instance.root is None
    assert not instance.running
