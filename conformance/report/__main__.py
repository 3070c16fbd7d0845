import sys

from conformance.report import main

sys.exit(main())
