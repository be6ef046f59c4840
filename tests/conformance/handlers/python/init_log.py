# Output printed while the file loads belongs to the first invocation's log.
print("printed while loading")


def logs_at_init(event, context):
    print("printed by the handler")
    return "done"
