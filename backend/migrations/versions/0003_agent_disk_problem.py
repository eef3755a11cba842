"""Agents say when their disk is full: agents.disk_problem.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-03
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("disk_problem", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("disk_problem")
