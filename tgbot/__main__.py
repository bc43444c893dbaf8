"""``python -m tgbot``: the same CLI as the ``tgbot`` command."""

from tgbot.cli import main

raise SystemExit(main())
