import sys

from deattack.cli.main import main

sys.exit(main())
