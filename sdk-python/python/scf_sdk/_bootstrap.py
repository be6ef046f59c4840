"""Entry point of a Python function instance: `python -m scf_sdk._bootstrap` (scf-shim runs the same code
inline with `python3 -c`, see shim/src/host/python.rs)."""

from scf_sdk._core import run

if __name__ == "__main__":
    run()
