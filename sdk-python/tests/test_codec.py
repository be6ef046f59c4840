"""The runtime's JSON codec against the standard library's rules (paired with tests/tests/python.rs)."""

import json
import math
import random
import struct
from collections import OrderedDict
from decimal import Decimal
from enum import IntEnum
from typing import Any, List

import pytest

from scf_sdk import _core

SAMPLES: List[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**200),
    0.0,
    -0.0,
    1.5,
    1e16,
    1e15,
    1e-5,
    1e-4,
    1 / 3,
    5e-324,
    1.7976931348623157e308,
    "",
    "plain",
    "中文 ünï 😀",
    "quote\" back\\ nl\n cr\r tab\t bs\b ff\f ctl\x01\x1f del\x7f ls\u2028",
    [],
    {},
    [1, [2, [3, {"a": [4]}]]],
    (1, "two", (3.0,)),
    {"z": 1, "a": 2, "m": {"nested": [None, True]}},
    {1: "int", 2.5: "float", True: "t", False: "f", None: "n"},
    OrderedDict([("b", 1), ("a", 2)]),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: repr(v)[:40])
def test_dumps_matches_json_dumps_ensure_ascii_false(value: Any) -> None:
    assert _core.dumps(value) == json.dumps(value, ensure_ascii=False)
    assert _core.dumps_bytes(value) == json.dumps(value, ensure_ascii=False).encode("utf-8")


def test_float_repr_matches_python_on_random_doubles() -> None:
    rnd = random.Random(1234)
    for _ in range(20000):
        f = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(f):
            assert _core.dumps(f) == repr(f)
    # Ties between two 17-digit candidates round to even, as CPython does.
    assert _core.dumps(1304743663535972.2) == "1304743663535972.2"


def test_int_and_float_subclasses_use_the_base_repr() -> None:
    class Color(IntEnum):
        RED = 1

    class F(float):
        def __repr__(self) -> str:
            return "nope"

    assert _core.dumps([Color.RED, F(2.5)]) == json.dumps([Color.RED, F(2.5)])


def test_decimal_is_written_as_its_number() -> None:
    assert _core.dumps({"p": Decimal("19.90"), "e": Decimal("1E+2")}) == '{"p": 19.90, "e": 1E+2}'
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        _core.dumps(Decimal("NaN"))


@pytest.mark.parametrize(
    "value, kind, message",
    [
        ({1, 2}, TypeError, "Object of type set is not JSON serializable"),
        (b"x", TypeError, "Object of type bytes is not JSON serializable"),
        (object(), TypeError, "Object of type object is not JSON serializable"),
        ({(1, 2): 3}, TypeError, "keys must be str, int, float, bool or None, not tuple"),
        (float("nan"), ValueError, "Out of range float values are not JSON compliant: nan"),
        ([float("inf")], ValueError, "Out of range float values are not JSON compliant: inf"),
        ({"x": float("-inf")}, ValueError, "Out of range float values are not JSON compliant: -inf"),
    ],
)
def test_values_with_no_json_form_are_refused(value: Any, kind: type, message: str) -> None:
    with pytest.raises(kind) as e:
        _core.dumps(value)
    assert str(e.value) == message


def test_cycles_are_refused() -> None:
    a: List[Any] = []
    a.append(a)
    with pytest.raises(ValueError, match="Circular reference detected"):
        _core.dumps(a)
    d: Any = {}
    d["self"] = [d]
    with pytest.raises(ValueError, match="Circular reference detected"):
        _core.dumps(d)


def test_lone_surrogates_are_escaped_not_lost() -> None:
    assert _core.dumps("a\ud800b") == '"a\\ud800b"'
    assert _core.loads(_core.dumps("a\ud800b")) == "a\ud800b"


DOCS = [
    '{"a": [1, 2.5, -3e5, true, false, null, "x\\u00e9\\ud83d\\ude00\\n"], "b": {}}',
    "123456789012345678901234567890",
    "-0",
    "-0.0",
    "1E400",
    ' [ 1 , "two" ] ',
    '{"dup": 1, "dup": 2}',
    '"\\/\\b\\f\\n\\r\\t\\"\\\\"',
    '"\\ud800"',
    '"中文 😀"',
]


@pytest.mark.parametrize("doc", DOCS)
def test_loads_matches_json_loads(doc: str) -> None:
    ours = _core.loads(doc)
    theirs = json.loads(doc)
    assert repr(ours) == repr(theirs)
    assert type(ours) is type(theirs)
    assert repr(_core.loads(doc.encode("utf-8"))) == repr(theirs)


@pytest.mark.parametrize(
    "bad",
    ["", "{", "[1,]", "NaN", "Infinity", '{"a" 1}', '"\x01"', "01", "1.", '"\\x"', "1 2", "[", '{"a":}', b'"\xff"'],
)
def test_loads_refuses_what_is_not_json(bad: Any) -> None:
    with pytest.raises(ValueError):
        _core.loads(bad)


def test_round_trip_of_a_large_document() -> None:
    rnd = random.Random(5)
    doc = [
        {"id": i, "name": f"item-{i}-ü", "score": rnd.random(), "tags": ["a", "b"], "ok": i % 2 == 0, "none": None}
        for i in range(5000)
    ]
    text = json.dumps(doc, ensure_ascii=False)
    assert _core.loads(text) == doc
    assert _core.dumps(_core.loads(text)) == text
    # Keys come from a cache across calls: the values must still be right on the next call.
    assert _core.loads('{"id": 7, "name": "x"}') == {"id": 7, "name": "x"}


def test_deep_nesting_is_refused_not_crashed() -> None:
    with pytest.raises(ValueError):
        _core.loads("[" * 5000 + "]" * 5000)
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(RecursionError):
        _core.dumps(deep)
