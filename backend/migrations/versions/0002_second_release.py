"""Second release: agents can drain, hand-over refusals are counted, the server has an identity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("draining", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("handover_refusals", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "server_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("created_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("server_identity")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("handover_refusals")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("draining")
