# Loading this file imports a module that does not exist: 443 ModuleNotFound.
import conformance_no_such_dependency  # noqa: F401


def error_dependency_missing(event, context):
    return "unreachable"
