"""The hello-world Python function: greets the name in the event and shows what the context carries."""

import json


def main_handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"greeting {name}")
    environment = json.loads(context["environment"]) if context["environment"] else {}
    return {
        "message": f"Hello, {name}!",
        "request_id": context["request_id"],
        "function_name": context["function_name"],
        "memory_limit_in_mb": context["memory_limit_in_mb"],
        "namespace": environment.get("SCF_NAMESPACE", context["namespace"]),
    }
