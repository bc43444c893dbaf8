"""Shared pieces of the privacy tests: a wallet outside the bot's database, a user with a full
history (question, refund, two tickets, a rating), and scans of the bot's files for a user."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from storage import Database
from tests.backend.fake_server import FakeWalletApi
from tgbot.backend.demo import DemoWallet
from tgbot.backend.demo_store import WalletStore, open_wallet_database

CODE = "246810"
RIGHTS = {"can_manage_topics": True, "can_delete_messages": True}


@dataclass
class Persona:
    """A wallet customer and what they type, in one language (distinctive words, so a scan
    of the bot's files can look for them)."""

    language_code: str
    name: str
    user_id: int
    phone: str
    account_id: str
    question: str
    reason: str
    ticket_text: str
    second_ticket_text: str
    agent_reply: str
    comment: str
    #: Fragments of the phone number (shared as a contact, typed in a ticket).
    phone_fragments: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        """Return what the user typed (and the agent's reply about it)."""
        return [
            self.question,
            self.reason,
            self.ticket_text,
            self.second_ticket_text,
            self.agent_reply,
            self.comment,
        ]


EN = Persona(
    language_code="en",
    name="Zoltana",
    user_id=7_314_159_265,
    phone="+14155550103",
    account_id="U1003",
    question="Why did the payment at Quarkbury fail?",
    reason="Parcel never came to Elmstreet",
    ticket_text="Charged twice at Quarkbury, call me on 415-555-0103",
    second_ticket_text="Still no parcel at Elmstreet",
    agent_reply="Checking the Quarkbury charge for you",
    comment="Kind and quick, thank you Bellweather",
    phone_fragments=("14155550103", "415-555-0103", "4155550103"),
    labels={
        "other_reason": "Other reason",
        "confirm_refund": "✅ Request the refund",
        "comment": "✍️ Add a comment",
        "delete": "🗑 Delete my data",
        "export": "📤 Export my data",
        "export_caption": "📤 Here is everything this support chat keeps about you, as of",
        "yes_delete": "🗑 Yes, delete my data",
        "done": "✅ Your data has been deleted",
        "erased_topic": "Data deleted at the user's request",
    },
)
ZH = Persona(
    language_code="zh-hans",
    name="欧阳娜娜",
    user_id=7_271_828_182,
    phone="+8613800138001",
    account_id="U1001",
    question="幸福路那笔支付为什么失败了",
    reason="商家少发了货要寄到幸福路",
    ticket_text="同一笔订单扣了两次款。我的手机138-0013-8001",
    second_ticket_text="幸福路的包裹还没到",
    agent_reply="我帮您查一下幸福路的订单",
    comment="客服很耐心。谢谢小贝",
    phone_fragments=("13800138001", "138-0013-8001", "8613800138001"),
    labels={
        "other_reason": "其他原因",
        "confirm_refund": "✅ 提交退款申请",
        "comment": "✍️ 写评价",
        "delete": "🗑 删除我的数据",
        "export": "📤 导出我的数据",
        "export_caption": "📤 这是截至",
        "yes_delete": "🗑 确定删除",
        "done": "✅ 您在本客服对话中的数据已删除",
        "erased_topic": "Data deleted at the user's request",
    },
)


async def start_wallet(path: Path) -> tuple[FakeWalletApi, Database]:
    """Start the demo wallet's API on its own database (so the bot's files hold only the bot's
    records, and a scan of them means something)."""
    db = await open_wallet_database(path)
    wallet = DemoWallet(WalletStore(db), public_url="http://wallet.test")
    await wallet.seed()
    return await FakeWalletApi(wallet).start(), db


def scan_files(paths: list[Path], needles: list[str]) -> dict[str, list[str]]:
    """Return, per file that exists, the needles found in its bytes."""
    found: dict[str, list[str]] = {}
    for path in paths:
        if not path.exists():
            continue
        blob = path.read_bytes()
        hits = [n for n in needles if n.encode() in blob]
        if hits:
            found[path.name] = hits
    return found


def scan_rows(db_path: Path, user_id: int) -> list[str]:
    """Return every table.column holding ``user_id`` (as a number, or inside a text)."""
    hits = []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_xinfo("{table}")')]
            for column in columns:
                count = conn.execute(
                    f'SELECT COUNT(*) FROM "{table}" WHERE "{column}" = ? '
                    f'OR instr(CAST("{column}" AS TEXT), ?) > 0',
                    (user_id, str(user_id)),
                ).fetchone()[0]
                if count:
                    hits.append(f"{table}.{column}: {count}")
    finally:
        conn.close()
    return hits


def plain(text: str) -> str:
    """Return message text without HTML tags."""
    return re.sub(r"<[^>]+>", "", text)
