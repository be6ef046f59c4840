raise RuntimeError("cannot start: missing configuration")


def main_handler(event, context):
    return "unreachable"
