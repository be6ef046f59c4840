"""The benchmark's Python handlers, the same for our runtime and for awslambdaric."""


def noop(event, context):
    return None


def echo(event, context):
    return event


def size(event, context):
    return len(event["Records"])
