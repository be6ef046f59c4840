"""The invocation context a Python handler receives (a plain ``dict`` at run time)."""

from typing import TypedDict


class Context(TypedDict):
    """The eleven fields of the SCF context, with the platform's names and types.

    ``environment`` is the function's environment as a JSON *string*; ``environ`` is the same as
    ``K=V;K=V``. The platform says more fields may come, so treat it as open for reading.
    """

    memory_limit_in_mb: int
    time_limit_in_ms: int
    request_id: str
    environment: str
    environ: str
    function_version: str
    function_name: str
    namespace: str
    tencentcloud_region: str
    tencentcloud_appid: str
    tencentcloud_uin: str


def make_context(
    *,
    request_id: str = "local-request-id",
    function_name: str = "local-function",
    namespace: str = "default",
    function_version: str = "$LATEST",
    memory_limit_in_mb: int = 128,
    time_limit_in_ms: int = 3000,
    region: str = "ap-guangzhou",
    appid: str = "",
    uin: str = "",
    environment: str = "",
    environ: str = "",
) -> Context:
    """A context as the platform would build it, for tests and local runs."""
    if not environment:
        from scf_sdk._core import encode_environment

        environment, built = encode_environment(
            [
                ("SCF_NAMESPACE", namespace),
                ("SCF_FUNCTIONNAME", function_name),
                ("SCF_FUNCTIONVERSION", function_version),
                ("TENCENTCLOUD_REGION", region),
            ]
        )
        environ = environ or built
    return Context(
        memory_limit_in_mb=memory_limit_in_mb,
        time_limit_in_ms=time_limit_in_ms,
        request_id=request_id,
        environment=environment,
        environ=environ,
        function_version=function_version,
        function_name=function_name,
        namespace=namespace,
        tencentcloud_region=region,
        tencentcloud_appid=appid,
        tencentcloud_uin=uin,
    )
