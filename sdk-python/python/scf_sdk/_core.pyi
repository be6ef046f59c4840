"""Stubs for the native core of scf_sdk (built from sdk-python/src with pyo3)."""

from typing import Any, Dict, List, Optional, Tuple, Union

__version__: str

_Text = Union[str, bytes, bytearray, memoryview]

def loads(text: _Text) -> Any:
    """JSON text -> Python objects, as json.loads builds them (strict JSON: no NaN/Infinity).

    Raises ValueError when the text is not JSON."""

def dumps(obj: Any) -> str:
    """json.dumps(obj, ensure_ascii=False) rules; NaN/Infinity refused (ValueError); Decimal as its number.

    Raises TypeError for values with no JSON form ("Object of type set is not JSON serializable")."""

def dumps_bytes(obj: Any) -> bytes:
    """Like dumps, UTF-8 encoded."""

def run() -> None:
    """Serves this function instance over the runtime API named by the environment (used by the bootstrap)."""

def zygote() -> None:
    """Serve as a Python zygote: fork one instance per request of the platform (docs/architecture.md)."""
    ...

def resolve(handler: str, code_root: Optional[str] = None, request_id: str = "local") -> Tuple[bool, Any]:
    """Production handler resolution: (True, callable) or (False, error body JSON)."""

def invoke(handler: Any, event_json: _Text, context: Dict[str, Any], request_id: str) -> Tuple[bool, str]:
    """One invocation through the production path: (True, result JSON) or (False, error body JSON)."""

def _bench_warm(handler: Any, event_json: _Text, n: int) -> float:
    """Seconds per warm invocation of the production host path."""

def encode_environment(pairs: List[Tuple[str, str]]) -> Tuple[str, str]:
    """The context's environment views built as the core builds them: (JSON object text, "K=V;K=V")."""
