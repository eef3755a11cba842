"""Baseline: the schema of the first release (4eeb44f).

First-release databases have these tables but no alembic_version, and some lack indexes that later
first-release builds added at start (factory._add_missing_indexes). So this revision makes only what is
missing, and remakes an index whose columns differ: such a database upgrades like an empty one.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# (table, name, columns, dialect options), as the first release declared them
INDEXES = [
    ("tasks", "ix_tasks_queue", ["status", "priority", "id", "cpu_cores", "gpu_count", "gpu_memory"], {}),
    ("tasks", "ix_tasks_coreless", ["status", "priority", "id", "gpu_count", "gpu_memory"],
     {"sqlite_where": sa.text("cpu_cores = 0"), "postgresql_where": sa.text("cpu_cores = 0")}),
    ("tasks", "ix_tasks_list", ["status", "id", "name"], {}),
    ("tasks", "ix_tasks_placement", ["agent_id", "holds_resources"], {}),
    ("tasks", "ix_tasks_template_type", ["template_type"], {}),
    ("task_dependencies", "ix_task_dependencies_depends_on_id", ["depends_on_id"], {}),
    ("agents", "ix_agents_tree", ["type", "main_agent_id", "status"], {}),
    ("agents", "ix_agents_task_id", ["task_id"], {}),
]


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in (("tasks", create_tasks), ("task_dependencies", create_task_dependencies),
                         ("agents", create_agents), ("templates", create_templates)):
        if name not in present:
            create()
    inspector = sa.inspect(op.get_bind())  # a fresh one: the tables above are new to it
    for table, name, columns, options in INDEXES:
        existing = {index["name"]: index["column_names"] for index in inspector.get_indexes(table)}
        if existing.get(name) == columns:
            continue
        if name in existing:
            op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, **options)


def downgrade() -> None:
    for table in ("templates", "agents", "task_dependencies", "tasks"):
        op.drop_table(table)


def create_tasks() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("template_type", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_time", sa.DateTime(), nullable=False),
        sa.Column("script_content", sa.Text(), nullable=False),
        sa.Column("cpu_cores", sa.Integer(), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("gpu_memory", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("sub_agent_id", sa.String(64), nullable=True),
        sa.Column("log_file", sa.String(500), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("gpu_ids", sa.JSON(), nullable=False),
        sa.Column("holds_resources", sa.Boolean(), nullable=False),
        sa.Column("handover_acked", sa.Boolean(), nullable=False),
        sa.Column("last_seen_time", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def create_task_dependencies() -> None:
    op.create_table(
        "task_dependencies",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("depends_on_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.ForeignKeyConstraint(["depends_on_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("task_id", "depends_on_id"),
    )


def create_agents() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("created_time", sa.DateTime(), nullable=False),
        sa.Column("started_time", sa.DateTime(), nullable=False),
        sa.Column("last_heartbeat_time", sa.DateTime(), nullable=True),
        sa.Column("cpu_cores", sa.Integer(), nullable=False),
        sa.Column("available_cpu_cores", sa.Integer(), nullable=False),
        sa.Column("cpu_usage", sa.Float(), nullable=False),
        sa.Column("memory_usage", sa.Float(), nullable=False),
        sa.Column("memory_used_mib", sa.Float(), nullable=False),
        sa.Column("memory_total_mib", sa.Integer(), nullable=False),
        sa.Column("gpu_info", sa.JSON(), nullable=False),
        sa.Column("is_simulated_gpu", sa.Boolean(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("main_agent_id", sa.String(64), nullable=True),
        sa.Column("monitor_file", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def create_templates() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("script_content", sa.Text(), nullable=False),
        sa.Column("created_time", sa.DateTime(), nullable=False),
        sa.Column("updated_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
