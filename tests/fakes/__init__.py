"""Fake channel servers (Telegram Bot API, WeChat API, WeCom robot) on 127.0.0.1, and a uvicorn runner."""
