"""The ticket domain: states and events (tickets), the one error actions raise, the staff <-> resident
relay, quiet hours, outbox rows at most once, binding codes.
"""
