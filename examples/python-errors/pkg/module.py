def main(event, context):
    return "pkg.module.main"
