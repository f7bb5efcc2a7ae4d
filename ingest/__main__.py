import sys

from civicair.cli import main

sys.exit(main(["ingest", *sys.argv[1:]]))
