"""The PEP 517 build backend of scf-sdk: maturin, with one rule added.

Building from source (the sdist, or ``pip install ./sdk-python``) needs Rust. maturin, when it finds no
``cargo``, downloads a whole Rust toolchain into a temporary directory on its own (hundreds of MB, with no
question asked). This backend never lets it: with no ``cargo`` on ``PATH`` the build stops at once with a
message that says what to do instead (install the prebuilt wheel, or install Rust).
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Mapping, Optional

# Before maturin is imported: its hooks read this to decide whether to fetch a toolchain.
os.environ["MATURIN_NO_INSTALL_RUST"] = "1"

import maturin  # type: ignore[import-untyped]  # noqa: E402  (maturin ships no type information)

NO_RUST = (
    "scf-sdk: building from source needs Rust (cargo on PATH), and this build does not download a toolchain "
    "by itself. Install the prebuilt wheel instead (`pip install scf-sdk`, or `pip install "
    "scf_sdk-<version>-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl` from the release: CPython 3.9+ "
    "on x86_64 Linux, glibc 2.17+), or install Rust (https://rustup.rs) and build again."
)

ConfigSettings = Optional[Mapping[str, Any]]


def _require_cargo() -> None:
    if shutil.which("cargo") is None:
        raise SystemExit(NO_RUST)


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
    return list(maturin.get_requires_for_build_wheel(config_settings))


def get_requires_for_build_editable(config_settings: ConfigSettings = None) -> list[str]:
    return list(maturin.get_requires_for_build_editable(config_settings))


def get_requires_for_build_sdist(config_settings: ConfigSettings = None) -> list[str]:
    return list(maturin.get_requires_for_build_sdist(config_settings))


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: ConfigSettings = None) -> str:
    _require_cargo()
    return str(maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings))


def build_wheel(
    wheel_directory: str, config_settings: ConfigSettings = None, metadata_directory: str | None = None
) -> str:
    _require_cargo()
    return str(maturin.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str, config_settings: ConfigSettings = None, metadata_directory: str | None = None
) -> str:
    _require_cargo()
    return str(maturin.build_editable(wheel_directory, config_settings, metadata_directory))


def build_sdist(sdist_directory: str, config_settings: ConfigSettings = None) -> str:
    _require_cargo()
    return str(maturin.build_sdist(sdist_directory, config_settings))
