"""What an INSERT does to a row, for the in-memory repositories: the id the database would give,
the column defaults it would fill in, the keys it would refuse to repeat. Read from the models'
own table definitions, so the memory repositories keep the SQL schema's rules without restating them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar, cast

from sqlalchemy import PrimaryKeyConstraint, Table, UniqueConstraint, inspect
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.orm import ColumnProperty, Mapper
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from data.models import Base

Row = TypeVar("Row", bound=Base)
Key = TypeVar("Key")


class DuplicateRow(ValueError):
    """The database would refuse the row: it repeats a primary or unique key of a stored one."""


def insert(rows: dict[Key, Row], row: Row) -> Row:
    """``row`` kept in ``rows`` (by its one-column primary key) as an INSERT keeps it: a new integer
    id when it has none, the defaults of the columns it leaves unset filled in; DuplicateRow if a
    key is taken."""
    mapper: Mapper[Row] = inspect(type(row))
    _fill_defaults(row, mapper)
    (primary,) = mapper.primary_key
    key = mapper.get_property_by_column(primary).key
    if getattr(row, key) is None:
        ids = [taken for taken in rows if isinstance(taken, int)]
        setattr(row, key, max(ids, default=0) + 1)
    _refuse_taken_keys(row, rows.values(), mapper)
    rows[getattr(row, key)] = row
    return row


def _fill_defaults(row: Row, mapper: Mapper[Row]) -> None:
    given = inspect(row).dict
    for prop in mapper.column_attrs:
        if prop.key not in given:
            _fill_default(row, prop)


def _fill_default(row: Row, prop: ColumnProperty[object]) -> None:
    default = prop.columns[0].default
    if isinstance(default, ScalarElementColumnDefault):
        setattr(row, prop.key, default.arg)
    elif isinstance(default, CallableColumnDefault):
        # a fresh list or dict per row: the models' callables take no context (SQLAlchemy's wrapper drops it)
        setattr(row, prop.key, default.arg(cast(ExecutionContext, None)))


def _refuse_taken_keys(row: Row, stored: Iterable[Row], mapper: Mapper[Row]) -> None:
    table = mapper.local_table
    assert isinstance(table, Table)
    others = [other for other in stored if other is not row]
    for constraint in table.constraints:
        if not isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint):
            continue
        names = [mapper.get_property_by_column(column).key for column in constraint.columns]
        wanted = [getattr(row, name) for name in names]
        if None in wanted:  # NULLs never collide in a unique key
            continue
        if any([getattr(other, name) for name in names] == wanted for other in others):
            raise DuplicateRow(f"{table.name}: {dict(zip(names, wanted, strict=True))} exists")
