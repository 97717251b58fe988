"""``python -m loopwarden``"""

from loopwarden._cli.main import entry

entry()
