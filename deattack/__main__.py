import sys

from deattack.cli import main

sys.exit(main())
