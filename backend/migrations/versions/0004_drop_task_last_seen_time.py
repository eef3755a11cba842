"""A task's wall-clock last sign of life goes: tasks.last_seen_time.

Nothing read it: liveness goes by services/last_heard.py, and the sub-agent's last_heartbeat_time
shows people the same beat. The downgrade adds it back empty.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-04
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("last_seen_time")


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("last_seen_time", sa.DateTime(), nullable=True))
