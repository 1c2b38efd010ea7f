"""Campaigns: bulk dialing with calling windows, do-not-call lists, retry
ladders and reports. ``ladder`` decides when a contact is tried again."""
