"""The public protocol of relationd: commands, replies, events, error codes and topology.

Shared by the daemon and every client; nothing here talks to a broker or a database.
"""
