"""Time helpers the forms use to tell a day from a time of day (no I/O)."""

from __future__ import annotations

from datetime import datetime

import pytest

from data.clock import SHANGHAI
from flows.dialog.slots import names_a_date, whole_days
from nlu.entities import extract
from nlu.types import TimeSpan

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


def expression(text: str) -> str:
    [found] = [e for e in extract(text, NOW) if e.type == "datetime"]
    return found.text


DATED = ["周六", "明天下午", "今晚", "3号上午", "12月3日", "3天后", "听朝", "星期五", "下礼拜一"]
WHOLE = [("周六", True), ("周末", True), ("明天", True), ("周六上午", False), ("下午三点", False)]


@pytest.mark.parametrize("text", DATED)
def test_a_date_is_named(text: str) -> None:
    assert names_a_date(expression(text))


@pytest.mark.parametrize("text", ["下午", "上午九点", "三点以后", "白天", "晚上8点", "半小时后"])
def test_only_a_time_of_day_is_named(text: str) -> None:
    assert not names_a_date(expression(text))


@pytest.mark.parametrize(("text", "whole"), WHOLE)
def test_whole_days(text: str, whole: bool) -> None:
    [span] = [e.value for e in extract(text, NOW) if isinstance(e.value, TimeSpan)]
    assert whole_days(span) is whole
