"""``python -m client.relctl``."""

import sys

from client.relctl import main

sys.exit(main())
