"""The resident's dialog: one message in, replies out (engine, turn), forms and their slots, several
requests in one message, drafts, changes to what exists, clarifying questions, and the registry of
intent specs.
"""
