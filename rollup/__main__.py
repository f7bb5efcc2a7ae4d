import sys

from civicair.cli import main

sys.exit(main(["rollup", *sys.argv[1:]]))
