"""Composition root: settings -> store, NLU, engine. Everything else asks this for its parts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import nlu
from bot.settings import Settings, load_settings
from data import demo
from data.clock import Clock, SystemClock
from data.db import DbEngine, Sessions, make_engine, make_session_factory, migrate, unit_of_work
from flows.dialog import hooks
from flows.dialog.engine import Engine
from nlu.types import NLUBackend

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    clock: Clock

    @cached_property
    def db(self) -> DbEngine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> Sessions:
        return make_session_factory(self.db)

    @cached_property
    def nlu(self) -> NLUBackend:
        return nlu.load_backend(self.settings.propbot_nlu, rasa_url=self.settings.rasa_url)

    @cached_property
    def engine(self) -> Engine:
        hooks.install()  # binding codes, staff relay, callback answers, "已缴费", outage look-ups
        return Engine(self.sessions, self.nlu)

    def prepare_store(self, with_demo: bool = False) -> bool:
        """Migrate the schema; load the demo compound (with its six months of history) into an empty
        store. True if it was loaded."""
        migrate(self.db)
        if not with_demo:
            return False
        with unit_of_work(self.sessions) as store:
            if not demo.is_empty(store):
                return False
            demo.load_demo(store, self.clock.now(), history=True)
            log.info("demo compound loaded")
            return True

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> App:
    return App(settings or load_settings(), clock or SystemClock())
