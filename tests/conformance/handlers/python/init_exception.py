# Loading this file raises: 443 InitError.
raise RuntimeError("failed while loading")


def error_init_exception(event, context):
    return "unreachable"
