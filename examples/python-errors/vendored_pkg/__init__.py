def hello():
    return "hello from a vendored package"
