"""The help articles: what each says (English msgids, translated in ``locales/``) and the
buttons that act on it. One per topic of the router (:mod:`.router`), except "none".

To add an article: add an :class:`Article` to :data:`ARTICLES` (a new ``key``, a title and a
body marked with ``N_``, its actions), add the key to :data:`.router.TOPICS`, add labelled
examples to ``data/train.tsv`` and rebuild the embeddings (``tgbot answers build``), run
``tgbot i18n update`` and translate the new entries. See ``docs/answers.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tgbot.i18n import N_

#: Callback data of the flows' entry points (the handlers own them; buttons only carry them).
PASSWORD = "menu:password"
CARDS = "menu:cards"
FREEZE = "menu:freeze"
LOOKUP = "menu:lookup"
REFUND = "menu:refund"
MY_REFUNDS = "refund:mine"

#: Labels identical to the flows' own menu labels (one msgid, one translation).
PASSWORD_LABEL = N_("🔑 Password / unlock")
CARDS_LABEL = N_("💳 Bank cards")
FREEZE_LABEL = N_("🧊 Freeze my account")
LOOKUP_LABEL = N_("🧾 Transactions")
REFUND_LABEL = N_("↩️ Refunds")
MY_REFUNDS_LABEL = N_("📋 My refunds")


@dataclass(frozen=True)
class Action:
    """A button under an article that starts a flow: label (``N_``) and callback data."""

    label: str
    data: str


@dataclass(frozen=True)
class Article:
    """One answer: an article (asks "did this solve it?") or a pointer to a flow."""

    key: str
    title: str
    body: str
    actions: tuple[Action, ...]
    #: ``"article"`` (help text, then "did this solve it?"), ``"flow"`` (a flow the router
    #: starts at once; the text is shown when it is picked among candidates),
    #: ``"complaint"`` (the text, then a ticket with the complaint) or ``"greeting"`` (the
    #: text and the main menu).
    kind: str = "article"


#: Values for the ``{hours}`` placeholder of the contact article.
HOURS_RANGE = N_("every day from {start} to {end} ({zone})")
HOURS_ALWAYS = N_("around the clock")

ARTICLES: tuple[Article, ...] = (
    Article(
        key="payment_failed",
        title=N_("💳 A payment failed"),
        body=N_(
            "Check these in order:\n"
            "1. <b>Network</b>: switch between Wi-Fi and mobile data, then try again.\n"
            "2. <b>Balance or card</b>: your balance or the chosen bank card must cover the "
            "amount; a bank can also decline its card (expired, the bank's own limit).\n"
            "3. <b>Details</b>: check the amount and the payee; ask the merchant for a fresh QR "
            "code.\n"
            "4. <b>Limits</b>: a payment over your daily or monthly limit is refused.\n"
            "5. <b>Merchant side</b>: if the shop's system is down, wait a few minutes or pay "
            "another way.\n\n"
            "Money left your account but the payment shows “Failed”? {failed_return} Look the "
            "payment up to see its status."
        ),
        actions=(Action(LOOKUP_LABEL, LOOKUP),),
    ),
    Article(
        key="money_not_arrived",
        title=N_("⏳ Money has not arrived"),
        body=N_(
            "Look the payment up: its status says where the money is.\n"
            "• <b>Processing</b>: the bank is still handling it. {processing}\n"
            "• <b>Failed</b>: the money did not move. {failed_return}\n"
            "• <b>Refunded</b>: the money went back to you. {refund_arrival}\n"
            "• <b>Successful</b> but the payee has nothing: ask them to check the account they "
            "gave you; their bank may still be crediting it.\n\n"
            "{processing_human}"
        ),
        actions=(Action(LOOKUP_LABEL, LOOKUP),),
    ),
    Article(
        key="refund_rules",
        title=N_("↩️ Refund rules and timelines"),
        body=N_(
            "• A payment can be refunded within <b>30 days</b>, in full or in part, when the "
            "merchant's rules allow it and something is left to refund.\n"
            "• A refund goes back to where the money came from: your U-Pay balance, or the "
            "bank card you paid with.\n"
            "• {refund_review} You get a message here at each step.\n"
            "• {refund_arrival}\n"
            "• Transfers to friends cannot be refunded by U-Pay: ask the person to send the "
            "money back."
        ),
        actions=(Action(REFUND_LABEL, REFUND), Action(MY_REFUNDS_LABEL, MY_REFUNDS)),
    ),
    Article(
        key="refund_request",
        kind="flow",
        title=N_("↩️ Ask for a refund"),
        body=N_(
            "I can start a refund for a payment from the last 30 days: choose the payment, the "
            "reason and the amount, and you get a reference at once."
        ),
        actions=(Action(REFUND_LABEL, REFUND),),
    ),
    Article(
        key="refund_status",
        kind="flow",
        title=N_("📋 Refund status"),
        body=N_(
            "Your refunds and where each one stands (submitted, reviewing, approved, refunded) "
            "are one tap away. You also get a message here whenever a status changes."
        ),
        actions=(Action(MY_REFUNDS_LABEL, MY_REFUNDS),),
    ),
    Article(
        key="password",
        title=N_("🔑 Forgotten password or locked account"),
        body=N_(
            "• <b>Forgotten password</b>: after a quick identity check I send you a one-time "
            "link to set a new one on U-Pay's own page. Never type a password in this "
            "chat.\n"
            "• <b>Locked account</b>: several wrong passwords lock the account to protect it. "
            "After the identity check I can unlock it here.\n"
            "• U-Pay staff never ask for your password, PIN or a verification code, by any means."
        ),
        actions=(Action(PASSWORD_LABEL, PASSWORD),),
    ),
    Article(
        key="unfreeze",
        title=N_("🧊 Unfreezing an account"),
        body=N_(
            "An account is frozen when you or our risk team stop it to protect your money, "
            "for example after a stolen phone or unusual activity. Money in a frozen account "
            "is safe; nobody can pay or transfer from it.\n\n"
            "To unfreeze it, a support agent checks that it is really you and reviews recent "
            "activity; have your ID at hand. This usually takes less than a day. Only an agent "
            "can unfreeze an account: tap below to talk to one."
        ),
        actions=(),
    ),
    Article(
        key="change_phone",
        title=N_("📱 Changing your bound phone number"),
        body=N_(
            "• <b>You still have the old number</b>: in the U-Pay app open Me › Settings › "
            "Security › Phone number, confirm with a code sent to the old number, then with "
            "one sent to the new number.\n"
            "• <b>The old number is gone</b>: choose “Old number unavailable” on the same page "
            "and verify with your ID instead; the review takes up to 2 business days.\n\n"
            "Codes are typed only into the app: support will never ask you to read one out."
        ),
        actions=(),
    ),
    Article(
        key="limits",
        title=N_("📊 Daily and monthly limits"),
        body=N_(
            "Limits protect your money if someone else gets into your account.\n"
            "• See and change them in the app: Me › Settings › Payment limits. Lowering a limit "
            "works at once; raising one needs a verification and goes up to what your identity "
            "check allows.\n"
            "• Completing the real-name check raises the limits.\n"
            "• Daily limits reset at midnight, monthly ones on the 1st.\n"
            "• A payment over a limit is refused and no money moves."
        ),
        actions=(),
    ),
    Article(
        key="fees",
        title=N_("💰 Fees"),
        body=N_(
            "• Paying merchants, receiving money and transfers to other U-Pay users are free.\n"
            "• {withdrawal_fee}\n"
            "• Every fee is shown before you confirm, and on the transaction's details "
            "afterwards.\n\n"
            "See a fee you did not expect? Look the transaction up, or talk to a human."
        ),
        actions=(Action(LOOKUP_LABEL, LOOKUP),),
    ),
    Article(
        key="account_safety",
        title=N_("🛡️ Keeping your account safe"),
        body=N_(
            "• Use a payment password you use nowhere else, and turn on fingerprint or face "
            "payment in the app.\n"
            "• Never share a verification code, password or PIN with anyone, including people "
            "who say they are U-Pay staff.\n"
            "• Install the app only from official app stores and keep your phone updated.\n"
            "• Check new logins and payments in the app's messages; keep your limits low if "
            "you rarely pay large amounts.\n"
            "• Lost your phone or see a payment you did not make? Freeze the account at once."
        ),
        actions=(Action(FREEZE_LABEL, FREEZE), Action(PASSWORD_LABEL, PASSWORD)),
    ),
    Article(
        key="phishing",
        title=N_("🎣 Phishing and fake support"),
        body=N_(
            "U-Pay staff will never, by chat, phone, text message or e-mail:\n"
            "• ask for your password, PIN, full card number or a verification code;\n"
            "• ask you to move money to a “safe account” or to “verify” your balance;\n"
            "• ask you to pay a fee, or share your screen, to get a refund or compensation;\n"
            "• ask you to install screen-sharing apps or open links outside upay.com.\n\n"
            "Anyone who does is a scammer: hang up, do not click, do not pay. Official support "
            "is only the U-Pay app and this bot; an “agent” writing to you from a personal "
            "Telegram account is not us, whatever the name or photo.\n"
            "Already shared a code or a password, or paid? Freeze your account now, talk to a "
            "human, and in mainland China report it to the police on 110 or the anti-fraud "
            "hotline 96110."
        ),
        actions=(Action(FREEZE_LABEL, FREEZE),),
    ),
    Article(
        key="account_stolen",
        title=N_("🚨 Account stolen or payments you did not make"),
        body=N_(
            "Act now:\n"
            "1. <b>Freeze your account</b> with the button below (you confirm first): nobody "
            "can pay or transfer until support unfreezes it.\n"
            "2. An agent then contacts you here as a priority to check recent activity.\n"
            "3. Phone stolen? Ask your mobile operator to block the SIM card too.\n"
            "4. Unauthorised card payments? Call your bank as well.\n\n"
            "Unauthorised payments are investigated; keep their details. If you were "
            "cheated, report it to the police (mainland China: 110, or the anti-fraud hotline "
            "96110)."
        ),
        actions=(Action(FREEZE_LABEL, FREEZE), Action(PASSWORD_LABEL, PASSWORD)),
    ),
    Article(
        key="contact",
        title=N_("☎️ Official channels and hours"),
        body=N_(
            "Official U-Pay support is only:\n"
            "• this bot, and the chat in the U-Pay app (Me › Help & support);\n"
            "• the website <b>upay.com</b>.\n\n"
            "Agents answer {hours}. Outside those hours your ticket is kept and answered when "
            "we open; this bot answers common questions at any time. Anyone contacting you "
            "elsewhere in the name of U-Pay is not us."
        ),
        actions=(),
    ),
    Article(
        key="cards",
        title=N_("💳 Adding or changing a bank card"),
        body=N_(
            "• <b>Add a card</b>: I open U-Pay's secure page for you; the card number is "
            "typed there, never in this chat.\n"
            "• <b>Verification</b>: U-Pay sends a small test deposit to the card. "
            "{micro_deposit} Tell me the exact amount to show that the card is yours.\n"
            "• <b>Change a card</b>: add the new one, then unbind the old one.\n"
            "• Binding fails when the name or phone number at the bank differs from your "
            "account's, or when the bank refuses the card."
        ),
        actions=(Action(CARDS_LABEL, CARDS),),
    ),
    Article(
        key="app_trouble",
        title=N_("📲 The app freezes, crashes or will not load"),
        body=N_(
            "Try these in order:\n"
            "1. Update U-Pay from your official app store, and your phone's system.\n"
            "2. Close the app fully and open it again; then restart the phone.\n"
            "3. Switch between Wi-Fi and mobile data.\n"
            "4. Clear the app's cache (Android: Settings › Apps › U-Pay › Storage).\n"
            "5. Reinstall the app: your money and history are safe in your account.\n\n"
            "This is about the app itself: your account is not frozen. Still failing? Tell a "
            "human your phone model and app version."
        ),
        actions=(),
    ),
    Article(
        key="sms_code",
        title=N_("✉️ Verification code not received"),
        body=N_(
            "• Wait 60 seconds before asking for a new code: only the newest code works, and "
            "each expires after 5 minutes.\n"
            "• Check that the phone has signal and is not in flight mode, and that the number "
            "on your account is the one in your hand.\n"
            "• Look in blocked or spam messages: some phones filter such SMS.\n"
            "• After too many requests, codes pause for 30 minutes.\n\n"
            "Type a code only where you asked for it: in the app, or in a verification here "
            "that you started yourself."
        ),
        actions=(),
    ),
    Article(
        key="wrong_transfer",
        title=N_("↪️ Money sent to the wrong person"),
        body=N_(
            "U-Pay cannot reverse a completed transfer without the receiver's consent.\n"
            "1. Still <b>processing</b>? Talk to a human now: it may still be stopped.\n"
            "2. Otherwise ask the receiver to send it back (the transfer's details show who "
            "it went to).\n"
            "3. No answer from them? An agent can contact them for you: give the transaction "
            "ID.\n\n"
            "Always check the name shown before you confirm a transfer."
        ),
        actions=(Action(LOOKUP_LABEL, LOOKUP),),
    ),
    Article(
        key="close_account",
        title=N_("🚪 Closing your account"),
        body=N_(
            "Before an account can be closed, its balance must be 0, no payment or refund may "
            "still be processing, and its bank cards must be unbound.\n"
            "Close it in the app: Me › Settings › Account › Close account. Closing is "
            "permanent; records are kept as the law requires.\n"
            "Cannot sign in any more? A human can close it after an identity check."
        ),
        actions=(),
    ),
    Article(
        key="lookup",
        kind="flow",
        title=N_("🧾 Your transactions"),
        body=N_(
            "I can show your recent payments, newest first, filter them by date or status, "
            "and explain what each status means."
        ),
        actions=(Action(LOOKUP_LABEL, LOOKUP),),
    ),
    Article(
        key="unknown_charge",
        title=N_("🔍 A charge you do not recognise"),
        body=N_(
            "Most unfamiliar charges turn out to be one of these:\n"
            "• <b>Another name</b>: the company behind a shop or an app often shows a different "
            "name on the statement.\n"
            "• <b>A subscription</b> that renewed by itself (video, music, cloud storage), or a "
            "deposit held by a hotel or a rental that is released later.\n"
            "• <b>Two charges for one order</b>: an order paid in parts, or a payment that "
            "failed and was retried. A real double charge can be refunded.\n"
            "• <b>Someone close to you</b>, or an old phone still signed in to your account.\n\n"
            "Look the payment up below: its details show the merchant, the time and the "
            "status. If you did not make it, freeze your account now and talk to a human."
        ),
        actions=(Action(LOOKUP_LABEL, LOOKUP), Action(FREEZE_LABEL, FREEZE)),
    ),
    Article(
        key="human",
        kind="flow",
        title=N_("🙋 Talk to a human"),
        body=N_(
            "An agent can take it from here: tap below and I will pass on your question. You "
            "get a ticket number and your place in the queue."
        ),
        actions=(),
    ),
    Article(
        key="complaint",
        kind="complaint",
        title=N_("📝 Your complaint"),
        body=N_(
            "I am sorry about your experience. Your complaint goes to a support agent now, "
            "together with your message, and you get an answer in this chat."
        ),
        actions=(),
    ),
    Article(
        key="greeting",
        kind="greeting",
        title=N_("👋 Hello"),
        body=N_(
            "Hello! I am the official U-Pay support assistant. Type your question in your own "
            "words, or choose a topic below."
        ),
        actions=(),
    ),
)


BY_KEY: dict[str, Article] = {article.key: article for article in ARTICLES}


def get_article(key: str) -> Article | None:
    """Return the article with ``key``, or None."""
    return BY_KEY.get(key)
