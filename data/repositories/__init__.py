"""Repositories by aggregate: a ``Protocol`` each (what callers may ask) and its SQLAlchemy
implementation over one session. ``data.store.Store`` hands them out; none of them commits."""
