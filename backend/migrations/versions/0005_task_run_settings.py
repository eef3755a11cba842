"""Tasks get their own run settings and retry links: env, work_dir, time_limit_s, notify,
retry_of, retried_as. Older rows get the defaults (no env, the agent's work dir, no limit, no one told).

Revision ID: 0005
Revises: 0004
Create Date: 2026-01-05
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("env", sa.JSON(), server_default="{}", nullable=False))
        batch.add_column(sa.Column("work_dir", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("time_limit_s", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("notify", sa.JSON(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("retry_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("retried_as", sa.Integer(), nullable=True))
        batch.create_index("ix_tasks_retry_of", ["retry_of"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_retry_of")
        for column in ("retried_as", "retry_of", "notify", "time_limit_s", "work_dir", "env"):
            batch.drop_column(column)
