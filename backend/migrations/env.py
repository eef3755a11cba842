"""Alembic environment: revisions in versions/, compared with `db.metadata` (backend/models) by `flask db migrate`.

The server runs it through backend/services/schema.py, which hands over an open connection (and its
transaction); `flask db ...` runs it in the app, on the app's engine. ALTERs go through batch mode so that
SQLite (which cannot alter most things in place) and PostgreSQL take the same revision files.
"""
from alembic import context

config = context.config


def skip_empty_revision(_context, _revision, directives) -> None:
    """`flask db migrate` with no model change writes no file."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        print("No changes in schema detected.")


def run_migrations(connection, target_metadata) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True, process_revision_directives=skip_empty_revision)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    # revision 0001 inspects the database (it adopts first-release databases), so there is no SQL script
    raise SystemExit("Offline (--sql) migrations are not supported; the server upgrades its database at start.")

connection = config.attributes.get("connection")
if connection is not None:
    # Upgrades need no models, so app.py's gunicorn master, which runs this before its gevent worker
    # patches threading, imports neither Flask nor the app.
    run_migrations(connection, target_metadata=None)
else:
    from flask import current_app

    app_db = current_app.extensions["migrate"].db
    with app_db.engine.connect() as app_connection:
        run_migrations(app_connection, app_db.metadata)
        app_connection.commit()
