"""The SQLite file holds residents' phones and the WeChat access token: only its owner reads it."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from data.db import make_engine, migrate


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The mode must not depend on a strict umask (0 gives 0666 to whatever SQLite opens itself)."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_a_new_database_and_its_wal_files_are_owner_only(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "var" / "propbot.db"  # the directory does not exist yet either
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
        with engine.begin() as connection:  # a write, so the -wal and -shm files exist now
            connection.execute(text("CREATE TABLE probe (x INTEGER)"))
        files = [path, path.with_name("propbot.db-wal"), path.with_name("propbot.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
    finally:
        engine.dispose()


def test_an_existing_readable_database_keeps_its_mode_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)  # the operator's choice (a backup group, say): not changed behind their back
    caplog.set_level(logging.WARNING, logger="data.db")
    make_engine(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o640
    assert "can be read by other users (mode 640)" in caplog.text
    caplog.clear()
    path.chmod(0o600)
    make_engine(f"sqlite:///{path}").dispose()
    assert caplog.text == ""
