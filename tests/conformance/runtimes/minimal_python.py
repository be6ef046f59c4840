"""A minimal SCF custom runtime for Python, standard library only: an example of an *external* runtime
implementation to run the conformance suite against (docs/conformance.md):

    target/debug/scf-local conformance --language python \
        --runtime-cmd "python3 $PWD/tests/conformance/runtimes/minimal_python.py"

It speaks the runtime API over TCP (SCF_RUNTIME_API, SCF_RUNTIME_API_PORT), loads `_HANDLER` from the
working directory (the code root), and answers with json.dumps. It is deliberately simple — about what a
first custom runtime looks like — so the suite has real differences to find.
"""
import http.client
import importlib
import json
import os
import sys
import traceback

HOST = os.environ.get("SCF_RUNTIME_API", "127.0.0.1")
PORT = int(os.environ.get("SCF_RUNTIME_API_PORT") or 9001)


def call(method, path, body=None):
    conn = http.client.HTTPConnection(HOST, PORT)  # one connection per call: simple, and never stale
    conn.request(method, path, body=body)
    r = conn.getresponse()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()


def error_body(request_id, error_type, status, message, trace=""):
    # the keys of docs/errors.md, in their order
    return json.dumps({"errorCode": -1, "errorMessage": message, "errorType": error_type,
                       "requestId": request_id, "stackTrace": trace, "statusCode": status})


def load():
    file, _, method = os.environ["_HANDLER"].rpartition(".")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(file)
    except ModuleNotFoundError as e:
        return None, ("ModuleNotFound", 443, "global name '%s' is not defined" % e.name, traceback.format_exc())
    except SyntaxError as e:
        return None, ("SyntaxError", 443, str(e), traceback.format_exc())
    except BaseException as e:  # noqa: BLE001 - any failure while loading
        return None, ("InitError", 443, str(e), traceback.format_exc())
    handler = getattr(module, method, None)
    if handler is None:
        return None, ("HandlerNotFound", 437, "'module' object has no attribute '%s'" % method, "")
    return handler, None


def main():
    handler, load_error = load()
    call("POST", "/runtime/init/ready", b" ")
    while True:
        _, headers, event = call("GET", "/runtime/invocation/next")
        request_id = headers.get("request_id", "")
        if load_error:
            call("POST", "/runtime/invocation/error", error_body(request_id, *load_error).encode())
            continue
        context = {
            "memory_limit_in_mb": int(headers.get("memory_limit_in_mb", 128)),
            "time_limit_in_ms": int(headers.get("time_limit_in_ms", 3000)),
            "request_id": request_id,
            "environment": "{}",
            "environ": "",
            "function_version": os.environ.get("SCF_FUNCTIONVERSION", "$LATEST"),
            "function_name": os.environ.get("SCF_FUNCTIONNAME", ""),
            "namespace": os.environ.get("SCF_NAMESPACE", "default"),
            "tencentcloud_region": os.environ.get("TENCENTCLOUD_REGION", ""),
            "tencentcloud_appid": os.environ.get("TENCENTCLOUD_APPID", ""),
            "tencentcloud_uin": os.environ.get("TENCENTCLOUD_UIN", ""),
        }
        try:
            result = json.dumps(handler(json.loads(event), context), ensure_ascii=False)
        except Exception:  # noqa: BLE001 - the function's failure
            sys.stdout.flush()
            body = error_body(request_id, "UnhandledError", 430, "user code exception caught",
                              traceback.format_exc())
            call("POST", "/runtime/invocation/error", body.encode())
            continue
        sys.stdout.flush()
        call("POST", "/runtime/invocation/response", result.encode())


main()
