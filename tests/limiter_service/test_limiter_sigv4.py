"""The store's SigV4 signer gives the signature botocore's SigV4Auth gives, for the requests it sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from limiter_service.stores.sigv4 import DynamoDBSigner, canonical_host

WHEN = datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC)


def botocore_headers(creds: ReadOnlyCredentials, region: str, url: str, target: str, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target},
    )
    SigV4Auth(creds, "dynamodb", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDM+token/with+slashes=="])
@pytest.mark.parametrize(
    "url", ["https://dynamodb.eu-west-1.amazonaws.com", "http://127.0.0.1:4567", "https://localhost:8443/"]
)
def test_same_authorization_as_botocore(monkeypatch: pytest.MonkeyPatch, token: str | None, url: str) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    creds = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    signer = DynamoDBSigner(creds, "eu-west-1", url)
    for key in ("k", "w#r#60#1700000000#ünïcode\x1fkey", "x" * 600):
        body = json.dumps({"TableName": "t", "Key": {"pk": {"S": key}}}, separators=(",", ":")).encode()
        for target in ("DynamoDB_20120810.UpdateItem", "DynamoDB_20120810.GetItem"):
            ours = signer.headers(target, body, WHEN)
            theirs = botocore_headers(creds, "eu-west-1", url.rstrip("/") + "/", target, body)
            assert ours["Authorization"] == theirs["Authorization"]
            assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20261130T235958Z"
            assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token") == token


def test_signing_key_follows_the_day() -> None:
    signer = DynamoDBSigner(
        ReadOnlyCredentials("AK", "SK", None), "us-east-1", "https://dynamodb.us-east-1.amazonaws.com"
    )
    body = b"{}"
    today = signer.headers("DynamoDB_20120810.GetItem", body, WHEN)
    tomorrow = signer.headers("DynamoDB_20120810.GetItem", body, WHEN.replace(day=1, month=12))
    assert "/20261130/us-east-1/dynamodb/aws4_request" in today["Authorization"]
    assert "/20261201/us-east-1/dynamodb/aws4_request" in tomorrow["Authorization"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com"),
        ("https://dynamodb.us-east-1.amazonaws.com:443/", "dynamodb.us-east-1.amazonaws.com"),
        ("http://127.0.0.1:80", "127.0.0.1"),
        ("http://127.0.0.1:4567", "127.0.0.1:4567"),
        ("http://[::1]:4567", "[::1]:4567"),
    ],
)
def test_canonical_host(url: str, host: str) -> None:
    assert canonical_host(url) == host
