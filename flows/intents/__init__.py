"""One module per intent: what it asks or answers, and its FlowSpec (read through
flows.dialog.registry).
"""
