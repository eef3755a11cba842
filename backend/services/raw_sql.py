"""SQL that skips SQLAlchemy's per-statement work because it runs hundreds of times a second: the
sub-agent heartbeat's ownership check (services/sub_output.py) and the beat buffer's batched writes
(services/beat_buffer.py). Each is still built once from the table objects, as a Core statement,
and compiled once per database dialect for a bare DB-API cursor: no column name or status literal
is written twice. SQLAlchemy's own execution costs ~5x the SQL there (bench: fleet).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from sqlalchemy import Column
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


class RawStatement:
    """A Core statement with bindparam()s, run on a DB-API cursor with a dict of values per row."""

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[tuple[str, str, str], tuple[str, Optional[list[str]], dict[str, Any]]] = {}

    def execute(self, cursor, dialect: Dialect, values: dict[str, Any]):
        sql, names, constants = self._compile(dialect)
        values = {**constants, **values} if constants else values
        cursor.execute(sql, [values[n] for n in names] if names is not None else values)
        return cursor

    def executemany(self, cursor, dialect: Dialect, rows: list[dict[str, Any]]) -> None:
        sql, names, constants = self._compile(dialect)
        rows = [{**constants, **row} for row in rows] if constants else rows
        cursor.executemany(sql, [[row[n] for n in names] for row in rows] if names is not None else rows)

    def _compile(self, dialect: Dialect) -> tuple[str, Optional[list[str]], dict[str, Any]]:
        """(SQL in the driver's placeholder style, the parameter names in order for a positional style,
        the values of the statement's own literals such as literal(0), which the caller does not pass)."""
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        if key not in self._compiled:
            # for_executemany: no implicit RETURNING on PostgreSQL, since no caller reads generated ids
            compiled = self.statement.compile(dialect=dialect, for_executemany=True)
            constants = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
            self._compiled[key] = (str(compiled), list(compiled.positiontup) if compiled.positiontup else None,
                                   constants)
        return self._compiled[key]


def to_db(column: Column, dialect: Dialect) -> Callable[[Any], Any]:
    """How the driver wants a value of this column (SQLite: a datetime as the text SQLAlchemy stores)."""
    return column.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
