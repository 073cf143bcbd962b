"""Process settings, read once: environment first, then an optional TOML file, then defaults.

Secrets are kept out of ``repr`` so they never reach a log line.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SECRET = {"secret": True}


class SettingsError(ValueError):
    """A setting is present but unusable; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/propbot.db"
    propbot_nlu: str = "embedded"  # embedded | rasa
    rasa_url: str = "http://127.0.0.1:5005"
    telegram_token: str = field(default="", repr=False, metadata=SECRET)
    telegram_webhook_secret: str = field(default="", repr=False, metadata=SECRET)
    telegram_staff_chat_id: str = ""
    telegram_api_url: str = "https://api.telegram.org/bot"  # overridden by tests' fake server
    telegram_polling: bool = False
    wechat_app_id: str = ""
    wechat_app_secret: str = field(default="", repr=False, metadata=SECRET)
    wechat_token: str = field(default="", repr=False, metadata=SECRET)
    wechat_aes_key: str = field(default="", repr=False, metadata=SECRET)
    wechat_allow_plaintext: bool = False  # with an AES key, also take plaintext callbacks (migration)
    wechat_api_url: str = "https://api.weixin.qq.com/cgi-bin/"
    wechat_templates: str = ""  # JSON: outbox kind -> template id and field mapping (docs/channels.md)
    wecom_robot_key: str = field(default="", repr=False, metadata=SECRET)
    wecom_api_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    # The WeCom self-built app (企业微信自建应用): the staff channel both ways (docs/channels.md)
    wecom_corp_id: str = ""
    wecom_agent_id: int = 0
    wecom_app_secret: str = field(default="", repr=False, metadata=SECRET)
    wecom_app_token: str = field(default="", repr=False, metadata=SECRET)  # 接收消息 Token
    wecom_app_aes_key: str = field(default="", repr=False, metadata=SECRET)  # EncodingAESKey
    wecom_app_api_url: str = "https://qyapi.weixin.qq.com/cgi-bin/"
    # JSON: compound code -> {"chat": app group chatid, "duty": userid of the duty member}
    wecom_app_chats: str = ""
    # "template": interactive cards (buttons); "textcard": a card linking to the desk, for accounts
    # that take no template cards (also chosen on its own when WeCom refuses them)
    wecom_app_cards: str = "template"
    engine_threads: int = 0  # threads handling messages; 0: 1 on SQLite, 2 on PostgreSQL (bot.intake)
    workers: int = 1  # server processes (propbot serve --workers)
    host: str = "127.0.0.1"
    port: int = 8080
    # The web front desk (/desk, docs/desk.md). Without a secret, one is made and kept in the database.
    desk_secret: str = field(default="", repr=False, metadata=SECRET)
    desk_secure_cookie: bool = False  # True behind HTTPS: the session cookie is sent over HTTPS only
    desk_session_hours: int = 12
    desk_lockout_attempts: int = 5  # failed logins of one account inside the window that lock it
    desk_lockout_window_min: int = 15
    desk_lockout_min: int = 15  # how long it stays locked
    desk_url: str = ""  # the server's public address (https://...): links to the desk from cards
    desk_link_hours: int = 72  # how long such a link holds
    desk_report_cache_min: int = 10  # how long the report page's figures and charts are kept
    telegram_bot_username: str = ""  # for binding-code QR codes: https://t.me/NAME?start=CODE

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token)

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_app_id and self.wechat_token)

    @property
    def wecom_app_enabled(self) -> bool:
        """The /wecom callback: WeCom always encrypts, so corp id, token and AES key are needed."""
        return bool(self.wecom_corp_id and self.wecom_app_token and self.wecom_app_aes_key)

    def secrets(self) -> list[str]:
        """The secret values that are set, to keep them out of log lines that quote other code."""
        return [
            value
            for spec in fields(self)
            if spec.metadata.get("secret") and (value := getattr(self, spec.name))
        ]


def load_settings(environ: dict[str, str] | None = None, config_file: str | None = None) -> Settings:
    """Settings from ``environ`` (default ``os.environ``) over ``PROPBOT_CONFIG``'s TOML file."""
    env = dict(os.environ if environ is None else environ)
    path = config_file or env.get("PROPBOT_CONFIG")
    from_file = _read_toml(Path(path)) if path else {}
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        raw = env.get(spec.name.upper(), from_file.get(spec.name))
        if raw is None:
            continue
        values[spec.name] = _convert(spec.name, raw, type(getattr(Settings, spec.name)))
    settings = Settings(**values)
    if settings.propbot_nlu not in ("embedded", "rasa"):
        raise SettingsError(f"PROPBOT_NLU must be 'embedded' or 'rasa', not {settings.propbot_nlu!r}")
    return settings


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            return {k.lower(): v for k, v in tomllib.load(handle).items()}
    except FileNotFoundError as exc:
        raise SettingsError(f"config file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc


def _convert(name: str, raw: object, kind: type) -> object:
    if kind is bool:
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
    if kind is int:
        try:
            return int(str(raw))
        except ValueError as exc:
            raise SettingsError(f"{name.upper()} must be a whole number, not {raw!r}") from exc
    return str(raw)
