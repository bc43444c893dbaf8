"""Services that outlive one update: the flows (``handlers``) call them, the assembly starts
them.

Each module's docstring says whether it runs once per deployment or in every process.
Today every service runs in every process that runs the bot; there is one such process per
database (the instance lock in ``storage``).

- :mod:`services.desk`: the support desk (ticket topics, relays, closing, group health).
- :mod:`services.broadcaster`: feeds broadcasts into the outbox and reports progress.
- :mod:`services.refunds`: the refund poller (status changes told to users).
- :mod:`services.queue`: the queue refresher (waiting users' place and wait).
- :mod:`services.jobs`: housekeeping jobs (group checks, reminders, inbox pruning, purge).
- :mod:`services.tickets`, :mod:`services.wording`: words and buttons the services and the
  flows both use.

Services import ``tgbot`` (context, config, i18n, outbox, backend) and ``storage``; never
``handlers`` or the assembly (``tgbot.app``, ``tgbot.cli``).
"""
