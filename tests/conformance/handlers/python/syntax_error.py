# This file does not parse: 443 SyntaxError.
def error_syntax(event, context)
    return "unreachable"
