def main_handler(event, context)
    return "unreachable"
