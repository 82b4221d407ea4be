"""``relationd`` on the default asyncio event loop (the CLI switches to uvloop when installed).

The bench runs the daemon this way to measure what uvloop brings; it is otherwise the same
``relationd run``.
"""

from __future__ import annotations

from daemon import cli


def main() -> None:
    cli._loop_policy = lambda: None  # keep asyncio's default loop
    cli.main()


if __name__ == "__main__":
    main()
