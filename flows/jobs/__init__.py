"""Scheduled work as plain functions of (store, now): time limits, bill notices and reminders,
callbacks, broadcasts; the scheduler (bot/scheduler.py) only runs them.
"""
