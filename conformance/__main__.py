import sys

from backprop_conformance.cli import main

sys.exit(main())
