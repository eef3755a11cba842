"""What the server and the agents share: the agent protocol (protocol.py) and the structlog set-up
(logging.py). Imports only the stdlib, pydantic and structlog, so an agent box needs neither Flask
nor SQLAlchemy (requirements-agent.txt)."""
