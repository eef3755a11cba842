"""Integers are 64-bit on PostgreSQL too: every integer column (and id sequence) becomes bigint there.

SQLite's INTEGER is 64-bit, and the API and the agent protocol accept ids, counts and exit codes up to
2**62; PostgreSQL's integer is 32-bit, so such a value was an error there (a usage sample's slot, seconds
over a sub-second beat interval, passes 2**31 today). SQLite is left as it is (no table copy).

Revision ID: 0007
Revises: 0006
Create Date: 2026-01-07
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _retype(sa.INTEGER, sa.BigInteger(), "bigint")


def downgrade() -> None:
    _retype(sa.BIGINT, sa.Integer(), "integer")


def _retype(reflected: type, new: sa.types.TypeEngine, sequence_type: str) -> None:
    """Every column PostgreSQL reports as `reflected` becomes `new`, every sequence `sequence_type`."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if type(column["type"]) is reflected:
                op.alter_column(table, column["name"], type_=new, existing_nullable=column["nullable"])
    for (name,) in bind.execute(sa.text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")):
        op.execute(f'ALTER SEQUENCE "{name}" AS {sequence_type}')
