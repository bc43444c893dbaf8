"""The demo wallet's own web pages, as a real wallet would host them.

- ``/wallet/reset/<token>``: set a new password with a one-time link (the password never
  reaches the bot and is not stored by the demo);
- ``/wallet/card/<session>``: the secure card-entry page of a binding (the number is
  checked, reduced to bank + last 4 digits, and never logged);
- ``/wallet/sms``: the SMS outbox as JSON, for the sandbox page (``?phone=`` filters); only
  with ``sms_outbox=True`` (``tgbot demo``): it shows live one-time codes, so ``tgbot run``
  never serves it.

Pages are bilingual (中文 / English), self-contained (no external CDN) and not cached.
Mount :func:`wallet_handlers` on a host tornado app, or run :func:`serve_wallet_pages`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tornado.httpserver
import tornado.log
import tornado.netutil
import tornado.web
from tornado.routing import URLSpec

from .base import Frozen, NotEligible, NotFound
from .wire import format_datetime

if TYPE_CHECKING:
    from .demo import DemoWallet

_STYLE = """
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;
background:#f4f6fa;margin:0;padding:24px;color:#1c2430}
main{max-width:420px;margin:0 auto;background:#fff;border-radius:12px;padding:24px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:20px;margin:0 0 4px}.en{color:#5b6675;font-size:14px}
label{display:block;margin:16px 0 4px;font-weight:600}
input{width:100%;box-sizing:border-box;padding:10px;font-size:16px;border:1px solid #c8d0da;
border-radius:8px}button{margin-top:20px;width:100%;padding:12px;font-size:16px;border:0;
border-radius:8px;background:#1677ff;color:#fff}.error{color:#c0262d;margin-top:12px}
.ok{color:#1a7f37}.brand{color:#1677ff;font-weight:700;margin-bottom:16px}
.rules{font-size:14px;color:#3d4856;margin:6px 0 0}
"""

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def _page(title_zh: str, title_en: str, body: str) -> str:
    title = html.escape(f"{title_zh} / {title_en}")
    return (
        '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body><main>"
        '<div class="brand">U钱包 · U-Pay</div>'
        f'<h1>{html.escape(title_zh)}</h1><div class="en">{html.escape(title_en)}</div>'
        f"{body}</main></body></html>"
    )


def _para(zh: str, en: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<p{cls}>{html.escape(zh)}<br><span class="en">{html.escape(en)}</span></p>'


_NOTICES: dict[str, tuple[str, str, str, str]] = {
    # state: (title zh, title en, text zh, text en)
    "expired": ("链接已过期", "This link has expired",
                "请回到客服对话重新获取链接。", "Go back to the support chat for a new link."),
    "used": ("链接已使用", "This link was already used",
             "每个链接只能使用一次。如需再次操作，请回到客服对话。",
             "Each link works once. Go back to the support chat to start again."),
    "unknown": ("链接无效", "This link is not valid",
                "请检查链接，或回到客服对话重新获取。",
                "Check the link, or get a new one in the support chat."),
    "frozen": ("账户已冻结", "The account is frozen",
               "为保护您的资金，冻结期间无法修改密码。请联系人工客服。",
               "To protect your money, the password cannot be changed while the account "
               "is frozen. Please talk to a human agent."),
}  # fmt: skip


class _WalletPage(tornado.web.RequestHandler):
    wallet: DemoWallet

    def initialize(self, wallet: DemoWallet) -> None:
        """Keep the demo wallet."""
        self.wallet = wallet

    def set_default_headers(self) -> None:
        """No caching, no framing, no referrer (the URL holds a one-time secret)."""
        for name, value in _HEADERS.items():
            self.set_header(name, value)

    def check_xsrf_cookie(self) -> None:
        """Skip: the one-time secret in the URL is what authorizes a form post."""

    def notice(self, state: str, status: int = 200) -> None:
        """Render an explanation page for an expired, used, unknown or frozen link."""
        title_zh, title_en, zh, en = _NOTICES.get(state, _NOTICES["unknown"])
        self.set_status(status)
        self.finish(_page(title_zh, title_en, _para(zh, en)))


#: The password rules as the demo wallet checks them (``demo.password_rules_ok``), stated on
#: the page (the browser's own hints speak only its UI language).
_RULES = (
    "密码需为 8-64 位，且同时包含字母和数字；请勿使用支付密码或在其他网站用过的密码。",
    "8 to 64 characters, with at least one letter and one digit. Do not reuse your payment "
    "password or a password from another site.",
)
_RULES_NOT_MET = (
    "新密码不符合要求：需为 8-64 位，且同时包含字母和数字。",
    "The new password does not meet the rules: 8 to 64 characters, with at least one letter "
    "and one digit.",
)


class ResetPasswordPage(_WalletPage):
    """``/wallet/reset/<token>``: set a new password with a one-time link."""

    async def get(self, token: str) -> None:
        """Show the form, or why the link no longer works."""
        state = await self.wallet.reset_token_state(token)
        if state != "valid":
            self.notice(state, 404 if state == "unknown" else 410)
            return
        self.finish(self._form())

    async def post(self, token: str) -> None:
        """Take the new password (twice); it goes no further than this handler."""
        password = self.get_body_argument("password", "")
        confirm = self.get_body_argument("confirm", "")
        if password != confirm:
            self.set_status(400)
            self.finish(self._form(("两次输入的密码不一致。", "The two passwords do not match.")))
            return
        try:
            await self.wallet.complete_password_reset(token, password)
        except NotEligible as exc:
            if exc.reason == "weak_password":
                self.set_status(400)
                self.finish(self._form(_RULES_NOT_MET))
                return
            self.notice(exc.reason, 410)
            return
        except Frozen:
            self.notice("frozen", 423)
            return
        except NotFound:
            self.notice("unknown", 404)
            return
        body = _para(
            "新密码已设置，账户已可正常使用。此链接已失效。",
            "Your new password is set and the account can be used. This link no longer works.",
            "ok",
        )
        self.finish(_page("密码已重置", "Password reset", body))

    def _form(self, error: tuple[str, str] | None = None) -> str:
        body = (
            _para(
                "请设置新的登录密码。客服不会向您索要密码。",
                "Choose a new password. Support staff will never ask you for it.",
            )
            + '<form method="post" autocomplete="off">'
            + '<label for="password">新密码 / New password</label>'
            # No minlength: the rules are checked here and said in both languages (the
            # browser's tooltip would speak only its own).
            + '<input id="password" name="password" type="password" maxlength="64" required '
            + 'autocomplete="new-password" aria-describedby="rules">'
            + f'<div id="rules">{_para(*_RULES, "rules")}</div>'
            + '<label for="confirm">确认新密码 / Confirm</label>'
            + '<input id="confirm" name="confirm" type="password" maxlength="64" required '
            + 'autocomplete="new-password">'
            + (_para(*error, "error") if error else "")
            + '<button type="submit">确认 / Confirm</button></form>'
        )
        return _page("重置密码", "Reset your password", body)


class CardEntryPage(_WalletPage):
    """``/wallet/card/<session>``: the secure page where a new card number is entered."""

    async def get(self, session: str) -> None:
        """Show the card form, or why the session no longer works."""
        binding = await self.wallet.binding_for_session(session)
        if binding is None:
            self.notice("unknown", 404)
            return
        if binding.status != "waiting_for_card":
            self.notice("expired" if binding.reason == "expired" else "used", 410)
            return
        self.finish(self._form())

    async def post(self, session: str) -> None:
        """Check the number, keep bank + last 4, start the micro-deposit."""
        number = self.get_body_argument("card_number", "")
        try:
            binding = await self.wallet.submit_card(session, number)
        except NotEligible as exc:
            if exc.reason == "invalid_card_number":
                self.set_status(400)
                self.finish(self._form(
                    ("卡号无效，请检查后重新输入。", "This card number is not valid; check it."),
                ))  # fmt: skip
                return
            self.notice(exc.reason, 410)
            return
        except NotFound:
            self.notice("unknown", 404)
            return
        card = binding.card
        ending = card.last4 if card else ""
        bank = card.bank if card else ""
        if binding.status == "awaiting_deposit":
            body = _para(
                f"我们已向您尾号 {ending} 的{bank}卡转入一笔小额验证金（¥0.01-0.99），"
                "请回到客服对话输入该金额以完成绑卡。",
                f"We sent a small deposit (¥0.01-0.99) to your {bank} card ending {ending}. "
                "Go back to the support chat and enter the amount to finish.",
                "ok",
            )
            self.finish(_page("请查收验证金", "Check the deposit", body))
        elif binding.reason == "already_bound":
            self.finish(_page("此卡已绑定", "This card is already added", _para(
                "这张卡已绑定在一个账户上。请回到客服对话。",
                "This card is already bound to an account. Go back to the support chat.",
                "error",
            )))  # fmt: skip
        else:
            self.finish(_page("银行未通过", "The bank declined", _para(
                "发卡行拒绝了绑卡请求，请换一张卡或联系银行。",
                "The card's bank refused the binding. Try another card or call your bank.",
                "error",
            )))  # fmt: skip

    def _form(self, error: tuple[str, str] | None = None) -> str:
        # The number is never echoed back into the page, not even after an error.
        body = (
            _para(
                "请在此输入新银行卡卡号。切勿在聊天中发送卡号。",
                "Enter the new card number here. Never send a card number in a chat.",
            )
            + '<form method="post" autocomplete="off">'
            + '<label for="card_number">银行卡号 / Card number</label>'
            + '<input id="card_number" name="card_number" inputmode="numeric" '
            + 'autocomplete="cc-number" maxlength="23" required>'
            + (_para(*error, "error") if error else "")
            + '<button type="submit">下一步 / Continue</button></form>'
        )
        return _page("添加银行卡", "Add a bank card", body)


class SmsOutboxApi(tornado.web.RequestHandler):
    """``/wallet/sms[?phone=+86...]``: the demo SMS outbox as JSON."""

    def initialize(self, wallet: DemoWallet) -> None:
        """Keep the demo wallet."""
        self.wallet = wallet

    async def get(self) -> None:
        """Return ``{"messages": [{id, phone, text, sent_at}, ...]}``, oldest first."""
        phone = self.get_query_argument("phone", None)
        messages = await self.wallet.sms_outbox(phone or None)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        payload: dict[str, Any] = {
            "messages": [
                {
                    "id": m.id,
                    "phone": m.phone,
                    "text": m.text,
                    "sent_at": format_datetime(m.sent_at),
                }
                for m in messages
            ]
        }
        self.finish(json.dumps(payload, ensure_ascii=False))


def wallet_handlers(demo_wallet: DemoWallet, *, sms_outbox: bool = False) -> list[URLSpec]:
    """Return the URL specs of the wallet pages, to mount on a host tornado app; the SMS
    outbox (live one-time codes) only with ``sms_outbox`` (the sandbox demo)."""
    context = {"wallet": demo_wallet}
    specs = [
        URLSpec(r"/wallet/reset/([A-Za-z0-9_\-]{1,128})", ResetPasswordPage, context),
        URLSpec(r"/wallet/card/([A-Za-z0-9_\-]{1,128})", CardEntryPage, context),
    ]
    if sms_outbox:
        specs.append(URLSpec(r"/wallet/sms", SmsOutboxApi, context))
    return specs


@dataclass
class WalletPagesServer:
    """The wallet pages served on their own (the bot running without the sandbox)."""

    http: tornado.httpserver.HTTPServer
    host: str
    port: int

    @property
    def url(self) -> str:
        """Return ``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        self.http.stop()
        await self.http.close_all_connections()


def _quiet_log(handler: tornado.web.RequestHandler) -> None:
    # The URL holds a one-time token; the access log keeps only the route and status.
    path = handler.request.path.rsplit("/", 1)[0] if "/wallet/" in handler.request.path else ""
    tornado.log.access_log.debug("%d %s %s/...", handler.get_status(), handler.request.method, path)


async def serve_wallet_pages(
    demo_wallet: DemoWallet,
    host: str = "127.0.0.1",
    port: int = 8766,
    *,
    sms_outbox: bool = False,
) -> WalletPagesServer:
    """Serve the wallet pages on ``host:port`` (0 picks a free port); the SMS outbox only
    with ``sms_outbox`` (never in ``tgbot run``)."""
    app = tornado.web.Application(
        wallet_handlers(demo_wallet, sms_outbox=sms_outbox), log_function=_quiet_log
    )
    sockets = tornado.netutil.bind_sockets(port, host)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    return WalletPagesServer(server, host, sockets[0].getsockname()[1])


__all__ = [
    "CardEntryPage",
    "ResetPasswordPage",
    "SmsOutboxApi",
    "WalletPagesServer",
    "serve_wallet_pages",
    "wallet_handlers",
]
