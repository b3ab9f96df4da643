import sys

from heliograph.background.host import main

sys.exit(main())
