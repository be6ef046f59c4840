"""The official TencentCloud Python SDK (tencentcloud-sdk-python-scf) against `scf-local serve`, unchanged.

Starts the real platform with a native example function and signature checking on, then drives it with
`ScfClient`: sync Invoke with a log tail, async Invoke, InvokeFunction, GetFunctionLogs, and a bad signature.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.scf.v20180416 import models, scf_client

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("SCF_TARGET_DIR", ROOT / "target" / "debug"))
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
    proc = subprocess.Popen(
        [str(TARGET / "scf-local"), "serve", "--port", "0", "--data-dir", str(data),
         "--secret-id", SECRET_ID, str(code)],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stderr is not None
    addr = ""
    for line in proc.stderr:
        if line.startswith("scf-local: listening on http://"):
            addr = line.strip().removeprefix("scf-local: listening on http://")
            break
    assert addr, "scf-local serve did not start"
    yield addr
    proc.terminate()
    proc.wait(timeout=30)


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
