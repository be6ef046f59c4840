"""The official TencentCloud Python SDK (tencentcloud-sdk-python-scf) against `scf-local serve`, unchanged.

Starts the real platform with a native example function and signature checking on, then drives it with
`ScfClient`: sync Invoke with a log tail, async Invoke, InvokeFunction, GetFunctionLogs, and a bad signature; then
signs requests by hand, each with one defect TencentCloud refuses (another service, another day, a header left
unsigned, an old timestamp, an unknown SecretId).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import TARGET, served
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.scf.v20180416 import models, scf_client

SECRET_ID = "AKIDlocalplatformEXAMPLE"
SECRET_KEY = "localplatformsecretkeyEXAMPLE"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    code = tmp_path_factory.mktemp("hello")
    shutil.copy(TARGET / "libindex.so", code / "libindex.so")
    (code / "serverless.yml").write_text(
        "component: scf\ninputs:\n  name: hello\n  handler: index.main_handler\n  runtime: native\n"
    )
    data = tmp_path_factory.mktemp("data")
    # The SecretKey as the platform prefers it: in its environment, which it removes from its own at start.
    env = {**os.environ, "TENCENTCLOUD_SECRETKEY": SECRET_KEY}
    with served(["--data-dir", str(data), "--secret-id", SECRET_ID, str(code)], env=env) as addr:
        yield addr


def client(addr: str, secret_key: str = SECRET_KEY) -> scf_client.ScfClient:
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=addr))
    return scf_client.ScfClient(credential.Credential(SECRET_ID, secret_key), "ap-guangzhou", profile)


def test_sync_invoke_with_log_tail(platform: str) -> None:
    req = models.InvokeRequest()
    req.FunctionName = "hello"
    req.ClientContext = json.dumps({"name": "SDK"})
    req.LogType = "Tail"
    resp = client(platform).Invoke(req)
    assert resp.Result.InvokeResult == 0
    body = json.loads(resp.Result.RetMsg)
    assert body["message"] == "Hello, SDK!"
    assert body["request_id"] == resp.Result.FunctionRequestId
    assert resp.Result.Log.startswith(f"START RequestId:{resp.Result.FunctionRequestId}\n")
    assert "greeting SDK" in resp.Result.Log
    assert resp.RequestId


def test_invoke_function_and_logs(platform: str) -> None:
    req = models.InvokeFunctionRequest()
    req.FunctionName = "hello"
    req.Event = json.dumps({"name": "again"})
    resp = client(platform).InvokeFunction(req)
    assert json.loads(resp.Result.RetMsg)["message"] == "Hello, again!"
    assert resp.Result.Log == ""

    logs = models.GetFunctionLogsRequest()
    logs.FunctionName = "hello"
    logs.FunctionRequestId = resp.Result.FunctionRequestId
    got = client(platform).GetFunctionLogs(logs)
    assert got.TotalCount == 1
    assert got.Data[0].RequestId == resp.Result.FunctionRequestId
    assert got.Data[0].RetCode == 0
    assert "greeting again" in got.Data[0].Log


def test_async_invoke_is_delivered(platform: str) -> None:
    req = models.InvokeRequest()
    req.FunctionName = "hello"
    req.InvocationType = "Event"
    req.ClientContext = json.dumps({"name": "later"})
    resp = client(platform).Invoke(req)
    request_id = resp.Result.FunctionRequestId
    assert request_id
    logs = models.GetFunctionLogsRequest()
    logs.FunctionName = "hello"
    logs.FunctionRequestId = request_id
    # Wait for the delivery (the state), failing only past a generous deadline.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = client(platform).GetFunctionLogs(logs)
        if got.TotalCount:
            assert got.Data[0].RetCode == 0
            assert "Hello, later!" in got.Data[0].RetMsg
            return
        time.sleep(0.05)
    pytest.fail("the async event was never delivered")


def test_a_bad_signature_is_refused(platform: str) -> None:
    req = models.InvokeRequest()
    req.FunctionName = "hello"
    with pytest.raises(TencentCloudSDKException) as err:
        client(platform, secret_key="wrong").Invoke(req)
    assert err.value.code == "AuthFailure.SignatureFailure"


def test_unknown_function(platform: str) -> None:
    req = models.InvokeRequest()
    req.FunctionName = "nope"
    with pytest.raises(TencentCloudSDKException) as err:
        client(platform).Invoke(req)
    assert err.value.code == "ResourceNotFound.Function"


def test_an_sdk_leaving_the_body_unsigned_is_accepted(platform: str) -> None:
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=platform))
    profile.unsignedPayload = True
    c = scf_client.ScfClient(credential.Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou", profile)
    req = models.InvokeRequest()
    req.FunctionName = "hello"
    req.ClientContext = json.dumps({"name": "unsigned"})
    assert json.loads(c.Invoke(req).Result.RetMsg)["message"] == "Hello, unsigned!"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _hand_signed(
    addr: str,
    *,
    service: str = "scf",
    date: str | None = None,
    timestamp: int | None = None,
    signed_headers: str = "content-type;host",
    secret_id: str = SECRET_ID,
) -> dict[str, object]:
    """A sync Invoke signed by hand (TC3-HMAC-SHA256 written out here, not the SDK's), with one part chosen."""
    ts = int(time.time()) if timestamp is None else timestamp
    day = date or datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d")
    body = json.dumps({"FunctionName": "hello", "ClientContext": json.dumps({"name": "hand"})})
    headers = {"content-type": "application/json", "host": addr, "x-tc-action": "Invoke"}
    # TC3 canonical headers: name and value lower-cased, trimmed.
    canonical_headers = "".join(f"{h}:{headers[h].strip().lower()}\n" for h in signed_headers.split(";"))
    canonical = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(body.encode()).hexdigest()]
    )
    scope = f"{day}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(ts), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(("TC3" + SECRET_KEY).encode(), day), service), "tc3_request")
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection(addr)
    conn.request(
        "POST",
        "/",
        body=body,
        headers={
            "Content-Type": headers["content-type"],
            "Host": addr,
            "X-TC-Action": "Invoke",
            "X-TC-Version": "2018-04-16",
            "X-TC-Timestamp": str(ts),
            "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={sig}",
        },
    )
    answer: dict[str, object] = json.loads(conn.getresponse().read())["Response"]
    conn.close()
    return answer


def _code(answer: dict[str, object]) -> str:
    error = answer.get("Error")
    return str(error["Code"]) if isinstance(error, dict) else "ok"


def test_a_hand_made_signature_is_checked_as_tencentcloud_checks_it(platform: str) -> None:
    assert _code(_hand_signed(platform)) == "ok", "the hand-made signer agrees with the platform"
    assert _code(_hand_signed(platform, signed_headers="content-type;host;x-tc-action")) == "ok"
    now = int(time.time())
    yesterday = datetime.datetime.fromtimestamp(now - 86400, datetime.timezone.utc).strftime("%Y-%m-%d")
    cases = {
        "made for cvm": (_hand_signed(platform, service="cvm"), "AuthFailure.SignatureFailure"),
        "a scope dated another day": (_hand_signed(platform, date=yesterday), "AuthFailure.SignatureFailure"),
        "host not signed": (_hand_signed(platform, signed_headers="content-type"), "AuthFailure.InvalidAuthorization"),
        "content-type not signed": (_hand_signed(platform, signed_headers="host"), "AuthFailure.InvalidAuthorization"),
        "ten minutes old": (_hand_signed(platform, timestamp=now - 600), "AuthFailure.SignatureExpire"),
        "an unknown SecretId": (_hand_signed(platform, secret_id="AKIDnobody"), "AuthFailure.SecretIdNotFound"),
    }
    for what, (answer, code) in cases.items():
        assert _code(answer) == code, f"{what}: {answer}"
