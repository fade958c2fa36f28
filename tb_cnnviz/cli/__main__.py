"""``python -m tb_cnnviz.cli``: the ``tb-cnnviz`` command."""

import sys

from tb_cnnviz.cli import main

sys.exit(main())
