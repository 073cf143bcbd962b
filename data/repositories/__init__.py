"""Repositories by aggregate: the only code outside ``data/`` that knows tables, queries and sessions.

Each module has a ``typing.Protocol`` (what the callers ask for, in their words: model instances,
plain values or small dataclasses back, never a query or the session) and ``SqlX``, its SQLAlchemy
implementation over one ``Session``. ``data.store.Store`` hands them out (``store.tickets``, ...)
as one unit of work; none of them commits.
"""
