import requests_not_installed  # noqa: F401  -> ModuleNotFound 443 "global name 'requests_not_installed' is not defined"


def main_handler(event, context):
    return "unreachable"
