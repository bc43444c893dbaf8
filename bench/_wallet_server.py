"""The demo wallet behind its documented HTTP API, as a benchmark's child process:
``python -m bench._wallet_server <wallet.db>``.

A real deployment's wallet is another service: the bot pays for its HTTP client, not for
the wallet's queries. This serves the demo wallet's file (seeded by
:func:`bench._common.prepare_database`) through the wallet API fake of the tests
(``tests/backend/fake_server.py``: every request and answer checked against
``docs/wallet-api.yaml``), so a benchmark can run the bot with ``TGBOT_BACKEND=http`` and
count only its own process. Prints ``PORT <n>`` once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys

#: The API key the benchmark's bot uses.
KEY = "bench-wallet-key"


async def serve(path: str) -> None:
    from tests.backend.fake_server import FakeWalletApi
    from tgbot.backend.demo import DemoWallet
    from tgbot.backend.demo_store import WalletStore, open_wallet_database

    db = await open_wallet_database(path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        wallet = DemoWallet(WalletStore(db), public_url="http://127.0.0.1:1")
        api = await FakeWalletApi(wallet, api_keys={KEY}).start()
        print(f"PORT {api.port}", flush=True)
        await stop.wait()
        await api.stop()
        if api.violations:
            print("\n".join(api.violations), file=sys.stderr)
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
