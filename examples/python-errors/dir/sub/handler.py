def main(event, context):
    return "dir/sub/handler.main"
