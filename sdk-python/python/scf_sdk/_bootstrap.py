"""Entry point of a Python function instance for an interpreter that has ``scf_sdk`` installed:
``python -m scf_sdk._bootstrap`` serves the instance described by the environment (``docs/protocol.md``).

``scf-shim`` does not use this module: it runs the same two lines inline with ``python3 -c`` (its
``BOOTSTRAP``), after putting the runtime's bundled copy of the SDK last on ``sys.path``.
"""

from scf_sdk._core import run

if __name__ == "__main__":
    run()
