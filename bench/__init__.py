"""Benchmarks: relationd against the simplest thing that could work, on the same broker and database.

``python -m bench`` runs every contender (raw aio-pika + asyncpg, a FastStream application, a
broker-only ceiling, relationd) as its own subprocess on its own vhost and database, drives each
with the same closed-loop load generator, and writes the table and plot into bench/results/.
See bench/README.md.
"""
