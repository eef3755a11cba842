"""`python -m task_client COMMAND`: the same as the `tq` command."""
from task_client.cli import main

main()
