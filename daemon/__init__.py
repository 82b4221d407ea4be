"""The relationd process: AMQP in, one PostgreSQL transaction per command, replies and events out.

The daemon knows nothing of relation rules; it runs ``handlers`` inside transactions it owns.
"""
