"""The task_system client: `Client` for Python scripts, `tq` (python -m task_client) for the terminal.

    from task_client import Client
    tq = Client()                      # TASK_SYSTEM_URL, else TASK_SERVER_URL, else http://127.0.0.1:5000
    task = tq.submit("python train.py", name="train", gpu_count=1, env={"LR": "3e-4"})
    print(tq.wait(task["id"])["status"])

Needs only requests (and click for the command line): no server packages.
"""
from task_client.client import Client, current_task_id
from task_client.errors import ServerUnreachable, TaskSystemError
from task_client.results import Agent, RetryResult, Task

__version__ = "0.2.0"
__all__ = ["Client", "TaskSystemError", "ServerUnreachable", "Task", "RetryResult", "Agent",
           "current_task_id", "__version__"]
