"""What every `python -m hil` command does with bad input: one line on stderr, exit status 2."""
import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`prog: error: ...`) and exit 2, no usage dump."""

    def error(self, message):
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(2)


def fail(prog, message):
    """Bad input found after parsing (a port that does not open, a malformed address)."""
    sys.stderr.write("%s: error: %s\n" % (prog, message))
    sys.exit(2)
