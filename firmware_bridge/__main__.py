import sys

from civicair.cli import main

sys.exit(main(["bridge", *sys.argv[1:]]))
