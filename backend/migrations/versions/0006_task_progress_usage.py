"""Tasks show their progress (read from their output) and keep their resource use over their life:
tasks.progress, task_usage_samples.

Revision ID: 0006
Revises: 0005
Create Date: 2026-01-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))
    op.create_table(
        "task_usage_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_mib", sa.Float(), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_samples_task_seq", "task_usage_samples", ["task_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_usage_samples_task_seq", table_name="task_usage_samples")
    op.drop_table("task_usage_samples")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("progress")
