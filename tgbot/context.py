"""The typed callback context: handlers get repositories, outbox and translations from it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from markupsafe import Markup
from telegram.ext import CallbackContext, ExtBot

from .i18n import Translator, translator

if TYPE_CHECKING:
    from storage import Repositories, User

    from .backend.base import WalletBackend
    from .config import Config
    from .outbox import OutboxWorker


class BotApplication(Protocol):
    """What handlers and services may use of the running application (``tgbot.app``
    assembles it; this layer does not import the assembly)."""

    repos: Repositories
    config: Config
    backend: WalletBackend
    outbox: OutboxWorker
    #: The long-lived services (``services``), typed loosely: they sit above this module.
    desk: Any
    broadcaster: Any
    privacy: Any
    flows: dict[str, Any]


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """PTB's context plus this project's services and the update's language."""

    def __init__(self, application: Any, chat_id: int | None = None, user_id: int | None = None):
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self.user_record: User | None = None
        #: Name of a flow the lifecycle stage ended for this update (e.g. by /cancel).
        self.ended_flow: str | None = None
        #: Whether this update's button press was answered (see handlers.common.answer_button).
        self.answered = False
        #: Whether the free-text router chose the flow this update starts (the freeze flow
        #: takes its urgent words itself only inside another flow; see handlers.freeze).
        self.routed = False
        #: A line the next flow step starts with (e.g. "✅ Verified"), so it is said once.
        self.step_prefix: str | None = None
        #: A message the next flow step edits instead of sending anew (the prompt above a
        #: typed code that was deleted).
        self.edit_target: int | None = None
        #: Step messages of a flow this update ended (navigated on in place).
        self.left_steps: set[int] = set()
        self._translator: Translator | None = None

    @property
    def app(self) -> BotApplication:
        """Return the running application."""
        return self.application  # type: ignore[return-value]

    @property
    def repos(self) -> Repositories:
        """Return the repositories facade."""
        return self.app.repos

    @property
    def config(self) -> Config:
        """Return the configuration."""
        return self.app.config

    @property
    def backend(self) -> WalletBackend:
        """Return the wallet backend adapter."""
        return self.app.backend

    @property
    def outbox(self) -> OutboxWorker:
        """Return the durable outbox."""
        return self.app.outbox

    @property
    def tr(self) -> Translator:
        """Return the translator of this update's user (the default language until known)."""
        if self._translator is None:
            self._translator = translator(self.config.default_language)
        return self._translator

    @tr.setter
    def tr(self, value: Translator) -> None:
        self._translator = value

    @property
    def lang(self) -> str:
        """Return this update's language code (``zh_Hans`` or ``en``)."""
        return self.tr.lang

    def _(self, message: str) -> Markup:
        """Translate ``message`` into this update's language (HTML whose ``format()``
        escapes every value: names and texts from outside the catalogs never become
        markup)."""
        return self.tr.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> Markup:
        """Translate the plural form of a message that fits ``n``."""
        return self.tr.ngettext(singular, plural, n)
