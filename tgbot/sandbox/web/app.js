/* The sandbox demo page: be a wallet user, an agent or an admin talking to the real bot.
 *
 * State comes from GET /demo/api/state, then live events over the /demo/ws WebSocket.
 * Actions go to the JSON endpoints under /demo/api/ (they act in the emulated Telegram; the
 * results come back as events, so the page shows exactly what the emulator holds).
 * Panels are listed in PANELS: a later issue adds or fills one there.
 * Security: every piece of text is inserted with textContent / text nodes, never innerHTML.
 */
"use strict";

(() => {
  // ------------------------------------------------------------------ helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "text") el.textContent = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const api = {
    async get(path) {
      const response = await fetch(path, { headers: { Accept: "application/json" } });
      return api.result(response);
    },
    async post(path, body) {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Demo": "1" },
        body: JSON.stringify(body),
      });
      return api.result(response);
    },
    async upload(form) {
      const response = await fetch("/demo/api/upload", {
        method: "POST",
        headers: { "X-Demo": "1" },
        body: form,
      });
      return api.result(response);
    },
    async result(response) {
      let data = null;
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
      if (!response.ok) {
        const message = (data && data.error) || `HTTP ${response.status}`;
        toast(`⚠️ ${message}`, { kind: "error" });
        throw new Error(message);
      }
      return data;
    },
  };

  const LANGUAGE_NAMES = { zh: "中文", en: "English" };
  const AVATAR_COLORS = ["#e17076", "#7bc862", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];

  function languageLabel(code) {
    if (!code) return "—";
    const base = code.split(/[-_]/)[0].toLowerCase();
    return `${LANGUAGE_NAMES[base] || base} · ${code}`;
  }

  function fullName(user) {
    if (!user) return "";
    if (user.title) return user.title;
    return [user.first_name, user.last_name].filter(Boolean).join(" ");
  }

  function avatar(name, id, extraClass) {
    const initial = Array.from((name || "?").trim())[0] || "?";
    const color = AVATAR_COLORS[Math.abs(Number(id) || 0) % AVATAR_COLORS.length];
    return h("div", { class: `avatar ${extraClass || ""}`, style: `background:${color}` }, initial.toUpperCase());
  }

  function timeOf(unix) {
    const date = new Date(unix * 1000);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function safeUrl(url) {
    return /^(https?:|tg:|mailto:|tel:)/i.test(url || "") ? url : null;
  }

  // ------------------------------------------------------------------ toasts

  function toast(text, options = {}) {
    const box = document.getElementById("toasts");
    const item = h("div", { class: `toast ${options.kind || ""}`, role: options.alert ? "alertdialog" : "status" });
    if (options.title) item.append(h("div", { class: "toast-title", text: options.title }));
    item.append(h("div", { class: "toast-text", text }));
    const close = () => item.remove();
    if (options.alert) {
      item.append(h("button", { class: "toast-ok", type: "button", onclick: close }, "OK"));
    } else {
      setTimeout(close, options.ms || 3500);
    }
    box.append(item);
    return item;
  }

  // ------------------------------------------------------------------ formatting

  /* Render text + Telegram entities (offsets in UTF-16 code units, which are JavaScript
   * string indices). Entities nest; one that overlaps its parent's end is clipped to it. */
  function renderFormatted(text, entities, handlers) {
    const list = (entities || [])
      .filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
      .map((e) => ({ ...e, end: Math.min(e.offset + e.length, text.length) }))
      .filter((e) => e.offset < text.length)
      .sort((a, b) => a.offset - b.offset || b.end - a.end);
    const root = { start: 0, end: text.length, children: [], entity: null };
    const stack = [root];
    for (const entity of list) {
      while (stack.length > 1 && entity.offset >= stack[stack.length - 1].end) stack.pop();
      const parent = stack[stack.length - 1];
      const node = { start: entity.offset, end: Math.min(entity.end, parent.end), children: [], entity };
      parent.children.push(node);
      stack.push(node);
    }
    const fragment = document.createDocumentFragment();
    fragment.append(buildNode(root, text, handlers));
    return fragment;
  }

  function buildNode(node, text, handlers) {
    const inner = document.createDocumentFragment();
    let at = node.start;
    for (const child of node.children) {
      if (child.start > at) inner.append(document.createTextNode(text.slice(at, child.start)));
      inner.append(buildNode(child, text, handlers));
      at = Math.max(at, child.end);
    }
    if (at < node.end) inner.append(document.createTextNode(text.slice(at, node.end)));
    if (!node.entity) return inner;
    return wrapEntity(node.entity, text.slice(node.start, node.end), inner, handlers);
  }

  function wrapEntity(entity, plain, inner, handlers) {
    const tags = { bold: "b", italic: "i", underline: "u", strikethrough: "s" };
    if (tags[entity.type]) return h(tags[entity.type], {}, inner);
    switch (entity.type) {
      case "code":
        return h("code", { class: "inline-code" }, inner);
      case "pre": {
        const code = h("code", {}, inner);
        if (entity.language) code.dataset.language = entity.language;
        return h("pre", {}, code);
      }
      case "spoiler": {
        const span = h("span", { class: "spoiler", title: "Spoiler: click to reveal" }, inner);
        span.addEventListener("click", () => span.classList.toggle("revealed"));
        return span;
      }
      case "blockquote":
        return h("blockquote", {}, inner);
      case "expandable_blockquote": {
        const quote = h("blockquote", { class: "expandable", title: "Click to expand" }, inner);
        quote.addEventListener("click", () => quote.classList.toggle("expanded"));
        return quote;
      }
      case "text_link":
      case "url":
      case "email":
      case "phone_number": {
        let href = entity.type === "text_link" ? entity.url : plain;
        if (entity.type === "url" && !/^[a-z]+:/i.test(href)) href = `https://${href}`;
        if (entity.type === "email") href = `mailto:${plain}`;
        if (entity.type === "phone_number") href = `tel:${plain.replace(/[^+\d]/g, "")}`;
        const url = safeUrl(href);
        if (!url) return h("span", { class: "link-invalid" }, inner);
        return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", title: url }, inner);
      }
      case "bot_command": {
        const link = h("a", { href: "#", class: "command" }, inner);
        link.addEventListener("click", (event) => {
          event.preventDefault();
          if (handlers && handlers.command) handlers.command(plain);
        });
        return link;
      }
      case "mention":
      case "hashtag":
      case "cashtag":
      case "text_mention":
        return h("span", { class: "mention" }, inner);
      default:
        return h("span", { class: `entity-${entity.type}` }, inner);
    }
  }

  // ------------------------------------------------------------------ store

  const store = {
    bot: null,
    people: [],
    chats: new Map(),
    faults: null,
    agentsGroupId: null,
    typing: new Map(),
    listeners: new Set(),
    person(id) {
      return this.people.find((p) => p.id === Number(id)) || null;
    },
    chat(id) {
      const key = Number(id);
      if (!this.chats.has(key)) {
        this.chats.set(key, { id: key, messages: new Map(), topics: new Map(), reply_keyboard: null });
      }
      return this.chats.get(key);
    },
    load(state) {
      this.bot = state.bot;
      this.people = state.people;
      this.agentsGroupId = state.agents_group_id;
      this.faults = state.faults;
      this.chats.clear();
      for (const data of Object.values(state.chats)) {
        const chat = this.chat(data.id);
        Object.assign(chat, { type: data.type, title: data.title, is_forum: data.is_forum });
        chat.reply_keyboard = data.reply_keyboard;
        for (const message of data.messages) chat.messages.set(message.message_id, message);
        for (const topic of data.topics || []) chat.topics.set(topic.message_thread_id, topic);
      }
      this.notify({ type: "state" });
    },
    apply(event) {
      if (event.chat_id !== undefined && event.chat_id !== null) {
        const chat = this.chat(event.chat_id);
        if ("reply_keyboard" in event) chat.reply_keyboard = event.reply_keyboard;
        if (event.type === "message" || event.type === "edit") {
          chat.messages.set(event.message.message_id, event.message);
          this.typing.delete(Number(event.chat_id));
        } else if (event.type === "delete") {
          chat.messages.delete(event.message_id);
        } else if (event.type === "topic") {
          const old = chat.topics.get(event.topic.message_thread_id) || {};
          chat.topics.set(event.topic.message_thread_id, { ...old, ...event.topic });
        } else if (event.type === "chat_action") {
          this.typing.set(Number(event.chat_id), Date.now() + 5000);
          setTimeout(() => this.notify({ type: "typing_end", chat_id: event.chat_id }), 5100);
        }
      }
      if (event.faults) this.applyFaults(event.faults);
      this.notify(event);
    },
    applyFaults(faults) {
      this.faults = faults;
      const blocked = new Set(faults.blocked || []);
      for (const person of this.people) person.blocked = blocked.has(person.id);
    },
    isTyping(chatId) {
      const until = this.typing.get(Number(chatId));
      return Boolean(until && until > Date.now());
    },
    notify(event) {
      for (const listener of this.listeners) {
        try {
          listener(event);
        } catch (error) {
          console.error(error);
        }
      }
    },
  };

  // ------------------------------------------------------------------ chat view

  const template = () => document.getElementById("chat-template").content.firstElementChild.cloneNode(true);

  class ChatView {
    constructor(options) {
      this.el = template();
      this.options = { ...options };
      this.messagesEl = this.el.querySelector(".messages");
      this.keyboardEl = this.el.querySelector(".reply-keyboard");
      this.input = this.el.querySelector(".input");
      this.fileInput = this.el.querySelector(".file-input");
      this.form = this.el.querySelector(".composer");
      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.sendText();
      });
      this.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.sendText();
        }
      });
      this.input.addEventListener("input", () => this.autosize());
      this.fileInput.addEventListener("change", () => this.sendFile());
      store.listeners.add((event) => this.onEvent(event));
    }

    get target() {
      return this.options;
    }

    setTarget(options) {
      this.options = { ...this.options, ...options };
      this.render();
    }

    visibleMessages() {
      const chat = store.chats.get(Number(this.options.chatId));
      if (!chat) return [];
      const thread = this.options.threadId;
      return [...chat.messages.values()]
        .filter((m) => {
          if (!this.options.forum) return true;
          const topicId = m.message_thread_id && chat.topics.has(m.message_thread_id) ? m.message_thread_id : null;
          return (thread || null) === topicId;
        })
        .sort((a, b) => a.message_id - b.message_id);
    }

    render() {
      const { title, subtitle, avatarName, avatarId } = this.options;
      const avatarEl = this.el.querySelector(".chat-avatar");
      avatarEl.replaceWith(avatar(avatarName || title, avatarId, "chat-avatar"));
      this.el.querySelector(".chat-name").textContent = title || "";
      this.renderStatus();
      const actions = this.el.querySelector(".chat-actions");
      actions.replaceChildren(...(this.options.actions || []));
      this.messagesEl.replaceChildren();
      const messages = this.visibleMessages();
      if (!messages.length) {
        this.messagesEl.append(h("div", { class: "empty-hint", text: this.options.emptyHint || "No messages yet." }));
      }
      for (const message of messages) this.messagesEl.append(this.bubble(message));
      this.renderKeyboard();
      this.input.placeholder = this.placeholder();
      const closed = this.options.closed;
      this.input.disabled = Boolean(closed);
      this.form.classList.toggle("disabled", Boolean(closed));
      this.scrollToEnd(true);
    }

    renderStatus() {
      const status = this.el.querySelector(".chat-status");
      const typing = store.isTyping(this.options.chatId);
      status.textContent = typing ? "typing…" : this.options.subtitle || "";
      status.classList.toggle("typing", typing);
    }

    placeholder() {
      const chat = store.chats.get(Number(this.options.chatId));
      const keyboard = chat && chat.reply_keyboard;
      if (keyboard && keyboard.input_field_placeholder) return keyboard.input_field_placeholder;
      return this.options.placeholder || "Message";
    }

    onEvent(event) {
      if (!this.el.isConnected) return;
      if (event.type === "state") {
        this.render();
        return;
      }
      if (Number(event.chat_id) !== Number(this.options.chatId)) return;
      if (event.type === "message" || event.type === "edit") {
        const nearEnd = this.isNearEnd();
        this.upsert(event.message);
        this.renderKeyboard();
        this.renderStatus();
        if (nearEnd) this.scrollToEnd();
      } else if (event.type === "delete") {
        const el = this.messagesEl.querySelector(`.msg[data-message-id="${event.message_id}"]`);
        if (el) {
          el.classList.add("deleting");
          setTimeout(() => el.remove(), 250);
        }
      } else if (event.type === "chat_action" || event.type === "typing_end") {
        this.renderStatus();
      } else if (event.type === "topic" && this.options.onTopic) {
        this.options.onTopic(event.topic);
      }
    }

    upsert(message) {
      const visible = this.visibleMessages().some((m) => m.message_id === message.message_id);
      const existing = this.messagesEl.querySelector(`.msg[data-message-id="${message.message_id}"]`);
      if (!visible) {
        if (existing) existing.remove();
        return;
      }
      const el = this.bubble(message);
      const nearEnd = this.isNearEnd();
      if (existing) {
        existing.replaceWith(el);
      } else {
        const hint = this.messagesEl.querySelector(".empty-hint");
        if (hint) hint.remove();
        const later = [...this.messagesEl.querySelectorAll(".msg")].find(
          (node) => Number(node.dataset.messageId) > message.message_id,
        );
        this.messagesEl.insertBefore(el, later || null);
        if (nearEnd || message.from?.id === this.options.actorId) this.scrollToEnd();
      }
    }

    isNearEnd(margin = 120) {
      const el = this.messagesEl;
      return el.scrollHeight - el.scrollTop - el.clientHeight < margin;
    }

    scrollToEnd(instant) {
      requestAnimationFrame(() => {
        this.messagesEl.scrollTo({ top: this.messagesEl.scrollHeight, behavior: instant ? "auto" : "smooth" });
      });
    }

    bubble(message) {
      const service = serviceText(message);
      const id = message.message_id;
      if (service) {
        return h("div", { class: "msg service", dataset: { messageId: id } }, h("span", { text: service }));
      }
      const fromId = message.from ? message.from.id : null;
      const outgoing = fromId === this.options.actorId;
      const fromBot = store.bot && fromId === store.bot.id;
      const classes = ["msg", outgoing ? "out" : "in", fromBot ? "from-bot" : ""].join(" ");
      const bubble = h("div", { class: "bubble" });
      if (!outgoing && this.options.showSenders) {
        const name = fromBot ? fullName(store.bot) : fullName(message.from);
        const color = AVATAR_COLORS[Math.abs(Number(fromId) || 0) % AVATAR_COLORS.length];
        bubble.append(h("div", { class: "sender", style: `color:${color}`, text: name }));
      }
      if (message.forward_origin) bubble.append(h("div", { class: "forwarded", text: `Forwarded from ${originName(message.forward_origin)}` }));
      const replied = message.reply_to_message;
      if (replied && !replied.forum_topic_created) {
        bubble.append(
          h(
            "div",
            { class: "reply-quote" },
            h("div", { class: "reply-name", text: fullName(replied.from) || "Message" }),
            h("div", { class: "reply-text", text: previewText(replied) }),
          ),
        );
      }
      const media = this.media(message);
      if (media) bubble.append(media);
      const text = message.text ?? message.caption;
      if (text) {
        const entities = message.text !== undefined ? message.entities : message.caption_entities;
        const textEl = h("div", { class: "text" });
        textEl.append(renderFormatted(text, entities, { command: (cmd) => this.send(cmd) }));
        bubble.append(textEl);
      }
      const meta = h("span", { class: "meta" });
      if (message.edit_date) meta.append(h("span", { class: "edited", text: "edited " }));
      meta.append(timeOf(message.date));
      if (outgoing) meta.append(h("span", { class: "ticks", text: " ✓✓" }));
      bubble.append(meta);
      const row = h("div", { class: classes, dataset: { messageId: id, from: fromId ?? "" } }, bubble);
      const keyboard = message.reply_markup && message.reply_markup.inline_keyboard;
      if (keyboard && keyboard.length) row.append(this.inlineKeyboard(message, keyboard));
      return row;
    }

    media(message) {
      if (message.photo && message.photo.length) {
        const best = message.photo[message.photo.length - 1];
        const img = h("img", { class: "photo", alt: "Photo", loading: "lazy", src: `/demo/api/file/${encodeURIComponent(best.file_id)}` });
        img.addEventListener("click", () => window.open(img.src, "_blank", "noopener"));
        img.addEventListener("load", () => {
          if (this.isNearEnd(400)) this.scrollToEnd(true);
        });
        return img;
      }
      if (message.document) {
        const doc = message.document;
        return h(
          "a",
          { class: "document", href: `/demo/api/file/${encodeURIComponent(doc.file_id)}`, download: doc.file_name || "file" },
          h("span", { class: "doc-icon", text: "📄" }),
          h(
            "span",
            { class: "doc-info" },
            h("span", { class: "doc-name", text: doc.file_name || "file" }),
            h("span", { class: "doc-size", text: formatBytes(doc.file_size || 0) }),
          ),
        );
      }
      if (message.contact) {
        const c = message.contact;
        return h(
          "div",
          { class: "contact" },
          h("span", { class: "doc-icon", text: "👤" }),
          h(
            "span",
            { class: "doc-info" },
            h("span", { class: "doc-name", text: fullName(c) }),
            h("span", { class: "doc-size", text: c.phone_number }),
          ),
        );
      }
      const kinds = { voice: "🎤 Voice message", sticker: "🖼 Sticker", video: "🎬 Video", audio: "🎵 Audio", animation: "🎞 GIF" };
      for (const [kind, label] of Object.entries(kinds)) {
        if (message[kind]) return h("div", { class: "media-placeholder", text: label });
      }
      return null;
    }

    inlineKeyboard(message, rows) {
      const box = h("div", { class: "inline-keyboard" });
      for (const row of rows) {
        const rowEl = h("div", { class: "inline-row" });
        for (const button of row) {
          const el = h("button", { type: "button", class: "inline-btn", text: button.text });
          if (button.callback_data !== undefined) {
            el.dataset.callbackData = button.callback_data;
            el.addEventListener("click", () => this.press(message, button, el));
          } else if (button.url || (button.login_url && button.login_url.url) || (button.web_app && button.web_app.url)) {
            const url = safeUrl(button.url || (button.login_url && button.login_url.url) || button.web_app.url);
            el.classList.add("url");
            el.title = url || "invalid URL";
            el.append(h("span", { class: "corner", text: "↗" }));
            el.addEventListener("click", () => url && window.open(url, "_blank", "noopener,noreferrer"));
          } else if (button.copy_text) {
            el.addEventListener("click", async () => {
              try {
                await navigator.clipboard.writeText(button.copy_text.text);
                toast("Copied to clipboard");
              } catch (_) {
                toast(button.copy_text.text, { title: "Copy this" });
              }
            });
          } else {
            el.disabled = true;
            el.title = "Not available in the sandbox";
          }
          rowEl.append(el);
        }
        box.append(rowEl);
      }
      return box;
    }

    async press(message, button, el) {
      el.classList.add("pressed");
      try {
        await api.post("/demo/api/press", {
          user_id: this.options.actorId,
          chat_id: this.options.chatId,
          message_id: message.message_id,
          data: button.callback_data,
        });
      } finally {
        setTimeout(() => el.classList.remove("pressed"), 400);
      }
    }

    renderKeyboard() {
      const chat = store.chats.get(Number(this.options.chatId));
      const keyboard = this.options.forum ? null : chat && chat.reply_keyboard;
      const rows = keyboard && keyboard.keyboard;
      this.keyboardEl.replaceChildren();
      this.keyboardEl.hidden = !rows || !rows.length;
      if (!rows) {
        this.input.placeholder = this.placeholder();
        return;
      }
      for (const row of rows) {
        const rowEl = h("div", { class: "reply-row" });
        for (const button of row) {
          const label = typeof button === "string" ? button : button.text;
          const el = h("button", { type: "button", class: "reply-btn", text: label });
          if (typeof button === "object" && button.request_contact) {
            el.classList.add("contact-btn");
            el.title = "Shares your own phone number with the bot";
          }
          el.addEventListener("click", () =>
            api.post("/demo/api/reply_button", { user_id: this.options.actorId, label }),
          );
          rowEl.append(el);
        }
        this.keyboardEl.append(rowEl);
      }
      this.input.placeholder = this.placeholder();
    }

    autosize() {
      this.input.style.height = "auto";
      this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
    }

    async sendText() {
      const text = this.input.value;
      if (!text.trim()) return;
      this.input.value = "";
      this.autosize();
      try {
        await this.send(text);
      } catch (_) {
        this.input.value = text;
      }
    }

    send(text) {
      const body = { user_id: this.options.actorId, text };
      if (this.options.chatId !== this.options.actorId) body.chat_id = this.options.chatId;
      if (this.options.threadId) body.thread_id = this.options.threadId;
      return api.post("/demo/api/send", body);
    }

    async sendFile() {
      const file = this.fileInput.files && this.fileInput.files[0];
      if (!file) return;
      const form = new FormData();
      form.append("user_id", String(this.options.actorId));
      if (this.options.chatId !== this.options.actorId) form.append("chat_id", String(this.options.chatId));
      if (this.options.threadId) form.append("thread_id", String(this.options.threadId));
      const caption = this.input.value.trim();
      if (caption) form.append("caption", caption);
      form.append("file", file, file.name);
      this.fileInput.value = "";
      await api.upload(form);
      if (caption) this.input.value = "";
    }
  }

  function serviceText(message) {
    const who = fullName(message.from);
    if (message.forum_topic_created) return `${who} created the topic “${message.forum_topic_created.name}”`;
    if (message.forum_topic_edited) return `${who} renamed the topic to “${message.forum_topic_edited.name || ""}”`;
    if (message.forum_topic_closed) return `${who} closed the topic`;
    if (message.forum_topic_reopened) return `${who} reopened the topic`;
    if (message.new_chat_members) return `${who} added ${message.new_chat_members.map(fullName).join(", ")}`;
    if (message.left_chat_member) return `${fullName(message.left_chat_member)} left the group`;
    if (message.pinned_message) return `${who} pinned a message`;
    if (message.group_chat_created) return `${who} created the group`;
    return null;
  }

  function originName(origin) {
    if (origin.sender_user) return fullName(origin.sender_user);
    if (origin.sender_user_name) return origin.sender_user_name;
    if (origin.chat) return fullName(origin.chat);
    return "someone";
  }

  function previewText(message) {
    if (!message) return "";
    if (message.text) return message.text.slice(0, 120);
    if (message.caption) return message.caption.slice(0, 120);
    if (message.photo) return "Photo";
    if (message.document) return message.document.file_name || "File";
    if (message.contact) return "Contact";
    return "Message";
  }

  // ------------------------------------------------------------------ people list

  function personItem(person, selected, onClick, extra) {
    const chat = store.chats.get(person.id);
    const last = chat ? [...chat.messages.values()].sort((a, b) => b.message_id - a.message_id)[0] : null;
    const item = h(
      "button",
      {
        type: "button",
        class: `person${selected ? " selected" : ""}`,
        dataset: { userId: person.id },
        onclick: onClick,
      },
      avatar(person.first_name, person.id),
      h(
        "span",
        { class: "person-info" },
        h(
          "span",
          { class: "person-top" },
          h("span", { class: "person-name", text: fullName(person) }),
          person.blocked ? h("span", { class: "badge blocked", text: "blocked bot" }) : null,
        ),
        h("span", { class: "person-lang", text: extra || languageLabel(person.language_code) }),
        h("span", { class: "person-last", text: last ? previewText(last) : "No messages yet — send /start" }),
      ),
    );
    return item;
  }

  // ------------------------------------------------------------------ panels

  function chatsPanel() {
    const el = h("div", { class: "panel split" });
    const sidebar = h("aside", { class: "sidebar" });
    const view = new ChatView({ emptyHint: "Say /start to meet the bot." });
    el.append(sidebar, view.el);
    let selected = null;
    const select = (person) => {
      selected = person.id;
      view.setTarget({
        chatId: person.id,
        actorId: person.id,
        title: fullName(store.bot),
        avatarName: "U",
        avatarId: store.bot ? store.bot.id : 0,
        subtitle: `bot · you are ${fullName(person)} (${languageLabel(person.language_code)})`,
        actions: [
          h("button", { type: "button", class: "ghost", onclick: () => view.send("/start"), text: "/start" }),
          h("button", { type: "button", class: "ghost", onclick: () => shareContact(person.id), text: "📱 Share contact" }),
        ],
      });
      renderSidebar();
    };
    const renderSidebar = () => {
      const users = store.people.filter((p) => p.role === "user");
      sidebar.replaceChildren(
        h("div", { class: "sidebar-title", text: "Demo users · 演示用户" }),
        ...users.map((p) => personItem(p, p.id === selected, () => select(p))),
        h(
          "p",
          { class: "sidebar-note" },
          "Each is a Telegram account with its own app language. The bot answers in the language Telegram reports until the user picks one with /language.",
        ),
      );
    };
    store.listeners.add((event) => {
      if (event.type === "state") {
        const first = store.people.find((p) => p.id === selected) || store.people.find((p) => p.role === "user");
        if (first) select(first);
      } else if (["message", "delete", "member", "faults"].includes(event.type)) {
        renderSidebar();
      }
    });
    return { el, view };
  }

  function shareContact(userId) {
    return api.post("/demo/api/contact", { user_id: userId });
  }

  function agentsPanel() {
    const el = h("div", { class: "panel split" });
    const sidebar = h("aside", { class: "sidebar" });
    const view = new ChatView({ forum: true, showSenders: true, emptyHint: "No messages in this topic yet." });
    el.append(sidebar, view.el);
    let thread = null;
    const agent = () => store.people.find((p) => p.role === "agent");
    const group = () => store.chats.get(Number(store.agentsGroupId));
    const open = (threadId) => {
      thread = threadId;
      const chat = group();
      const topic = threadId && chat ? chat.topics.get(threadId) : null;
      const me = agent();
      view.setTarget({
        chatId: store.agentsGroupId,
        actorId: me ? me.id : 0,
        threadId,
        title: topic ? topic.name : "General",
        avatarName: chat ? chat.title : "A",
        avatarId: store.agentsGroupId,
        subtitle: `${chat ? chat.title : ""} · you are ${me ? fullName(me) : "an agent"}${topic && topic.closed ? " · topic closed" : ""}`,
        closed: Boolean(topic && topic.closed),
        placeholder: me ? `Write as ${fullName(me)}…` : "Message",
        onTopic: () => renderSidebar(),
      });
      renderSidebar();
    };
    const newTopic = async () => {
      const name = window.prompt("Topic name (1–128 characters)");
      if (!name) return;
      const me = agent();
      const result = await api.post("/demo/api/topic", { user_id: me.id, chat_id: store.agentsGroupId, name });
      open(result.result);
    };
    const renderSidebar = () => {
      const chat = group();
      const me = agent();
      const topics = chat ? [...chat.topics.values()].filter((t) => !t.deleted) : [];
      topics.sort((a, b) => b.message_thread_id - a.message_thread_id);
      const item = (threadId, name, extra) =>
        h(
          "button",
          { type: "button", class: `topic${thread === threadId ? " selected" : ""}`, dataset: { threadId: threadId || "general" }, onclick: () => open(threadId) },
          h("span", { class: "topic-icon", style: extra && extra.color ? `background:#${extra.color.toString(16).padStart(6, "0")}` : "" }, threadId ? "#" : "💬"),
          h("span", { class: "topic-name", text: name }),
          extra && extra.closed ? h("span", { class: "badge", text: "closed" }) : null,
        );
      sidebar.replaceChildren(
        h("div", { class: "sidebar-title", text: chat ? chat.title : "Agents' group" }),
        h("div", { class: "sidebar-sub", text: me ? `Acting as ${fullName(me)} · forum group · the bot is an admin` : "" }),
        h("button", { type: "button", class: "new-topic", onclick: newTopic, text: "＋ New topic" }),
        item(null, "General", null),
        ...topics.map((t) => item(t.message_thread_id, t.name, { color: t.icon_color, closed: t.closed })),
        h("p", { class: "sidebar-note" }, "Each escalated chat is a topic here (try 🙋 Talk to a human as a user). Reply inside the topic as the agent: the user gets it from the bot. Commands: /claim /close /note /macro /transfer /transcript."),
      );
    };
    store.listeners.add((event) => {
      if (event.type === "state") open(thread);
      else if (event.type === "topic" && Number(event.chat_id) === Number(store.agentsGroupId)) {
        if (thread && event.topic.message_thread_id === thread && (event.topic.deleted || event.topic.closed !== undefined)) {
          if (event.topic.deleted) open(null);
          else open(thread);
        } else renderSidebar();
      }
    });
    return { el, view };
  }

  function adminPanel() {
    const el = h("div", { class: "panel split" });
    const sidebar = h("aside", { class: "sidebar" });
    const view = new ChatView({ emptyHint: "Admins broadcast notices, manage agents and see stats here." });
    el.append(sidebar, view.el);
    store.listeners.add((event) => {
      if (event.type !== "state" && !["message", "member"].includes(event.type)) return;
      const admin = store.people.find((p) => p.role === "admin");
      if (!admin) return;
      sidebar.replaceChildren(
        h("div", { class: "sidebar-title", text: "Admin · 管理员" }),
        personItem(admin, true, () => {}, `admin · ${languageLabel(admin.language_code)}`),
        h("p", { class: "sidebar-note" }, "A private chat with the bot as the configured admin (TGBOT_ADMIN_IDS). Commands: /broadcast (a security notice to every user, per language), /agents, /agent_add USER_ID NAME, /agent_remove USER_ID, /stats, /audit."),
      );
      if (event.type === "state") {
        view.setTarget({
          chatId: admin.id,
          actorId: admin.id,
          title: fullName(store.bot),
          avatarName: "U",
          avatarId: store.bot.id,
          subtitle: `bot · you are ${fullName(admin)} (admin)`,
        });
      }
    });
    return { el, view };
  }

  const ACCOUNT_STATUS = {
    active: { label: "active · 正常", kind: "ok" },
    locked: { label: "locked · 已锁定", kind: "warn" },
    frozen: { label: "frozen · 已冻结", kind: "danger" },
  };

  const WALLET_TEST_CARDS = [
    ["6212 2600 0000 0001", "中国工商银行 debit — deposit sent · 已打款"],
    ["4242 4242 4242 4242", "Visa Bank debit — deposit sent · 已打款"],
    ["4000 0000 0000 0002", "refused by the bank · 银行拒绝"],
    ["4111 1111 1111 1111", "already bound · 已被绑定"],
  ];

  /* The SMS text with every 6-digit one-time code wrapped in a highlighted <mark>. */
  function smsText(text) {
    const box = h("div", { class: "sms-text" });
    let at = 0;
    for (const match of text.matchAll(/(?<!\d)\d{6}(?!\d)/g)) {
      if (match.index > at) box.append(text.slice(at, match.index));
      box.append(h("mark", { class: "sms-code", title: "One-time code · 验证码", text: match[0] }));
      at = match.index + match[0].length;
    }
    if (at < text.length) box.append(text.slice(at));
    return box;
  }

  function smsTime(unix) {
    const date = new Date(unix * 1000);
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    if (date.toDateString() === new Date().toDateString()) return time;
    return `${date.toLocaleDateString()} ${time}`;
  }

  function walletPanel() {
    const el = h("div", { class: "panel wallet-panel" });
    const smsList = h("ol", { class: "sms-list", "aria-live": "polite" });
    const smsStatus = h("span", { class: "sms-status", role: "status" });
    const filter = h("select", { class: "sms-filter", name: "phone", title: "Show the SMS of one phone" });
    const accountsBody = h("tbody");
    const codeHint = h("p", { class: "code-hint" });
    const origin = h("code", { text: location.origin });
    el.append(
      h(
        "div",
        { class: "wallet-col" },
        h(
          "section",
          { class: "card sms-card" },
          h(
            "div",
            { class: "card-head" },
            h("h2", { text: "SMS outbox · 短信发件箱" }),
            h("label", { class: "sms-filter-label" }, h("span", { class: "muted", text: "Phone · 手机号" }), filter),
          ),
          h("p", { class: "muted", text: "Texts the demo wallet “sent” (one-time codes, micro-deposits), newest first. No real SMS leaves this machine. · 演示钱包“发送”的短信（验证码、小额打款），最新的在最上面；不会发出真实短信。" }),
          h("div", { class: "sms-toolbar" }, smsStatus, h("a", { href: "/wallet/sms", target: "_blank", rel: "noopener", class: "json-link", text: "JSON ↗" })),
          smsList,
        ),
        h(
          "section",
          { class: "card links-card" },
          h("h2", { text: "Wallet pages · 钱包页面" }),
          h("p", {}, "Password-reset links (🔑) and “secure card page” buttons (💳) in the chat open the wallet’s own pages in a new tab, served by this demo at ", origin, ": the bot never sees a password or a card number."),
          h("p", { class: "muted", text: "聊天中的重置密码链接和“安全绑卡页面”按钮会在新标签页打开钱包自己的页面；机器人不会接触密码或卡号。链接一次有效，15 分钟内过期。" }),
          h(
            "ul",
            { class: "link-list" },
            h("li", {}, h("code", { text: "/wallet/reset/<token>" }), " — set a new password · 设置新密码 (8–64)"),
            h("li", {}, h("code", { text: "/wallet/card/<session>" }), " — add a card, then confirm the micro-deposit from the SMS · 绑卡后输入短信里的打款金额"),
          ),
          h("div", { class: "test-cards-title", text: "Test card numbers · 测试卡号" }),
          h(
            "ul",
            { class: "test-cards" },
            WALLET_TEST_CARDS.map(([number, result]) => h("li", {}, h("code", { text: number }), h("span", { class: "muted", text: result }))),
          ),
        ),
      ),
      h(
        "div",
        { class: "wallet-col" },
        h(
          "section",
          { class: "card accounts-card" },
          h("h2", { text: "Demo accounts · 演示账户" }),
          codeHint,
          h(
            "table",
            { class: "accounts" },
            h("thead", {}, h("tr", {}, h("th", { text: "Name · 姓名" }), h("th", { text: "Phone · 手机号" }), h("th", { text: "Status · 状态" }))),
            accountsBody,
          ),
          h("p", { class: "muted small", text: "To verify: press 💳 or 🔑 in a chat, tap “share my contact”, type the code from the outbox. · 验证身份：在聊天里点 💳 或 🔑，分享联系人，再输入短信里的验证码。" }),
        ),
      ),
    );

    let data = null;
    let seen = null; // SMS ids already shown (new ones flash)
    let timer = null;
    let inflight = false;
    let soon = null;

    const telegramOf = (phone) => store.people.find((p) => p.phone_number === phone && p.role === "user") || null;

    const renderAccounts = () => {
      if (!data || !data.available) {
        codeHint.textContent = "";
        accountsBody.replaceChildren();
        return;
      }
      codeHint.replaceChildren(
        data.fixed_code
          ? h("span", {}, "Code for demo phones · 演示手机号验证码: ", h("b", { class: "fixed-code", text: data.fixed_code }))
          : h("span", { text: "Codes are random: read them in the SMS outbox · 验证码随机，请在短信发件箱查看" }),
      );
      const rows = data.accounts.map((account) => {
        const status = ACCOUNT_STATUS[account.status] || { label: account.status, kind: "" };
        const person = telegramOf(account.phone);
        return h(
          "tr",
          { dataset: { accountId: account.id, phone: account.phone } },
          h(
            "td",
            {},
            h("div", { class: "account-name", text: account.name }),
            h("div", { class: "muted small", text: person ? `${account.id} · Telegram: ${fullName(person)}` : `${account.id} · not in the sandbox` }),
          ),
          h("td", {}, h("code", { class: "phone", text: account.phone })),
          h(
            "td",
            {},
            h("span", { class: `status ${status.kind}`, text: status.label }),
            account.reason ? h("div", { class: "muted small", text: account.reason }) : null,
          ),
        );
      });
      rows.push(
        h(
          "tr",
          { class: "no-account" },
          h("td", {}, h("div", { class: "account-name muted", text: "(no account)" }), h("div", { class: "muted small", text: "“no account” reply · 无账户提示" })),
          h("td", {}, h("code", { class: "phone", text: data.no_account_phone })),
          h("td", {}, h("span", { class: "status", text: "dead end · 无账户" })),
        ),
      );
      accountsBody.replaceChildren(...rows);
    };

    const renderFilter = () => {
      const phones = [...new Set([...(data ? data.accounts.map((a) => a.phone) : []), ...(data ? data.sms.map((m) => m.phone) : [])])];
      const current = filter.value;
      filter.replaceChildren(
        h("option", { value: "", text: "All · 全部" }),
        ...phones.map((phone) => h("option", { value: phone, text: phone })),
      );
      filter.value = phones.includes(current) ? current : "";
    };

    const renderSms = () => {
      if (!data || !data.available) {
        smsList.replaceChildren(h("li", { class: "sms-empty", text: "The demo wallet is not in use (TGBOT_BACKEND=http): SMS go out through the real wallet. · 未使用演示钱包。" }));
        return;
      }
      const wanted = filter.value;
      const items = data.sms.filter((m) => !wanted || m.phone === wanted);
      const first = seen === null;
      const nextSeen = new Set(data.sms.map((m) => m.id));
      smsList.replaceChildren(
        ...items.map((m) => {
          const account = data.accounts.find((a) => a.phone === m.phone);
          return h(
            "li",
            { class: `sms${!first && !seen.has(m.id) ? " fresh" : ""}`, dataset: { smsId: m.id, phone: m.phone } },
            h(
              "div",
              { class: "sms-head" },
              h("span", { class: "sms-icon", "aria-hidden": "true", text: "✉" }),
              h("code", { class: "sms-phone", text: m.phone }),
              account ? h("span", { class: "sms-name", text: account.name }) : null,
              h("time", { class: "sms-time", datetime: new Date(m.sent_at * 1000).toISOString(), text: smsTime(m.sent_at) }),
            ),
            smsText(m.text),
          );
        }),
      );
      if (!items.length) {
        smsList.append(h("li", { class: "sms-empty", text: "No SMS yet. Ask the bot to verify you (💳 / 🔑, then share your contact). · 还没有短信。" }));
      }
      seen = nextSeen;
    };

    const refresh = async () => {
      if (inflight) return;
      inflight = true;
      try {
        const response = await fetch("/demo/api/wallet", { headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        data = await response.json();
        renderFilter();
        renderAccounts();
        renderSms();
        smsStatus.textContent = `${data.sms.length} SMS · updated ${new Date().toLocaleTimeString()} · refreshes every 2 s`;
        smsStatus.classList.remove("error");
      } catch (_) {
        smsStatus.textContent = "Cannot reach the demo wallet; retrying… · 无法连接演示钱包，重试中…";
        smsStatus.classList.add("error");
      } finally {
        inflight = false;
      }
    };

    filter.addEventListener("change", renderSms);
    // The bot answers right after the wallet sends an SMS: refresh at once, not in 2 s.
    store.listeners.add((event) => {
      if (timer === null || !["message", "state"].includes(event.type)) return;
      clearTimeout(soon);
      soon = setTimeout(refresh, 150);
    });

    return {
      el,
      onShow: () => {
        if (timer === null) timer = setInterval(refresh, 2000);
        refresh();
      },
      onHide: () => {
        clearInterval(timer);
        clearTimeout(soon);
        timer = null;
      },
    };
  }

  function faultsPanel() {
    const el = h("div", { class: "panel faults-panel" });
    const form = h("form", { class: "card faults-form", id: "faults-form", novalidate: true });
    el.append(form);
    const number = (name, label, attrs, help) =>
      h(
        "label",
        { class: "field" },
        h("span", { class: "field-label", text: label }),
        h("input", { type: "number", name, ...attrs, step: "any" }),
        help ? h("span", { class: "field-help", text: help }) : null,
      );
    const fraction = (name, label, help) => number(name, label, { min: 0, max: 1, step: 0.01 }, help);
    const checkbox = (name, label) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", name }), h("span", { text: label }));
    const status = h("div", { class: "faults-status", role: "status" });
    const blockedBox = h("div", { class: "blocked-list" });
    form.append(
      h("h2", { text: "Fault injection · 故障注入" }),
      h("p", { class: "muted", text: "Faults apply to every Bot API call the bot makes except getUpdates. Tests set the same on emu.faults and emu.caps." }),
      h(
        "fieldset",
        {},
        h("legend", { text: "Network and errors" }),
        number("latency", "Added latency per call (s)", { min: 0, max: 60, step: 0.05 }),
        fraction("rate_429", "Fraction answered 429 Too Many Requests"),
        number("retry_after", "retry_after of those 429s (s)", { min: 1, max: 3600, step: 1 }),
        fraction("rate_5xx", "Fraction answered 500 Internal Server Error"),
        fraction("rate_timeout", "Fraction timed out (no answer)"),
        fraction("timeout_after_delivery", "…of which delivered anyway", "The message arrives, the bot sees a timeout: a retry may duplicate it."),
        number("timeout_hold", "Hold timed-out calls for (s)", { min: 0, max: 600, step: 1 }),
      ),
      h(
        "fieldset",
        {},
        h("legend", { text: "Telegram's caps (429 over them)" }),
        checkbox("caps.enabled", "Caps on"),
        number("caps.overall_per_second", "Bulk messages per second (to users who did not just write)", { min: 1, step: 1 }),
        number("caps.per_group_per_minute", "Messages per minute, per group", { min: 1, step: 1 }),
        number("caps.per_private_chat_per_second", "Messages per second, per private chat", { min: 0.01, step: 0.1 }),
        number("caps.private_chat_burst", "Burst per private chat", { min: 1, step: 1 }),
      ),
      h("fieldset", {}, h("legend", { text: "Users who blocked the bot (403)" }), blockedBox),
      h(
        "div",
        { class: "form-actions" },
        h("button", { type: "submit", class: "primary", name: "apply", text: "Apply" }),
        h("button", { type: "button", class: "ghost", name: "reload", text: "Reload", onclick: () => reload() }),
        h("button", { type: "button", class: "ghost", name: "reset", text: "No faults", onclick: () => reset() }),
        status,
      ),
    );
    const field = (name) => form.elements.namedItem(name);
    const fill = (faults) => {
      if (!faults) return;
      for (const name of ["latency", "rate_429", "retry_after", "rate_5xx", "rate_timeout", "timeout_after_delivery", "timeout_hold"]) {
        field(name).value = faults[name];
      }
      field("caps.enabled").checked = faults.caps.enabled;
      for (const name of ["overall_per_second", "per_group_per_minute", "per_private_chat_per_second", "private_chat_burst"]) {
        field(`caps.${name}`).value = faults.caps[name];
      }
      const blocked = new Set(faults.blocked);
      blockedBox.replaceChildren(
        ...store.people.map((p) =>
          h(
            "label",
            { class: "check" },
            h("input", { type: "checkbox", name: "blocked", value: p.id, checked: blocked.has(p.id), dataset: { userId: p.id } }),
            avatar(p.first_name, p.id, "small"),
            h("span", { text: `${fullName(p)} (${p.role})` }),
          ),
        ),
      );
    };
    const collect = () => {
      const num = (name) => Number(field(name).value);
      const payload = {};
      for (const name of ["latency", "rate_429", "retry_after", "rate_5xx", "rate_timeout", "timeout_after_delivery", "timeout_hold"]) {
        payload[name] = num(name);
      }
      payload.caps = { enabled: field("caps.enabled").checked };
      for (const name of ["overall_per_second", "per_group_per_minute", "per_private_chat_per_second", "private_chat_burst"]) {
        payload.caps[name] = num(`caps.${name}`);
      }
      payload.blocked = [...form.querySelectorAll('input[name="blocked"]:checked')].map((i) => Number(i.value));
      return payload;
    };
    const say = (text) => {
      status.textContent = text;
    };
    const apply = async (payload) => {
      const faults = await api.post("/demo/api/faults", payload);
      store.applyFaults(faults);
      fill(faults);
      say(`Applied at ${new Date().toLocaleTimeString()}`);
      store.notify({ type: "faults", faults });
    };
    const reload = async () => {
      const faults = await api.get("/demo/api/faults");
      store.applyFaults(faults);
      fill(faults);
      say("Loaded the emulator's current settings");
    };
    const reset = () =>
      apply({ latency: 0, rate_429: 0, rate_5xx: 0, rate_timeout: 0, timeout_after_delivery: 0, blocked: [] });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply(collect()).catch(() => say("Not applied"));
    });
    store.listeners.add((event) => {
      if (event.type === "state") fill(store.faults);
      else if ((event.type === "faults" || event.type === "member") && !form.contains(document.activeElement)) fill(store.faults);
    });
    return { el, onShow: () => reload().catch(() => {}) };
  }

  const PANELS = [
    { id: "chats", label: "Chats", sub: "聊天", build: chatsPanel },
    { id: "agents", label: "Agents' group", sub: "客服群", build: agentsPanel },
    { id: "admin", label: "Admin", sub: "管理员", build: adminPanel },
    { id: "wallet", label: "Demo wallet", sub: "演示钱包", build: walletPanel },
    { id: "faults", label: "Faults", sub: "故障注入", build: faultsPanel },
  ];

  // ------------------------------------------------------------------ live feed

  function setLive(state, text) {
    const el = document.getElementById("live");
    el.dataset.state = state;
    el.querySelector(".live-text").textContent = text;
  }

  function connect(delay = 500) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/demo/ws`);
    socket.addEventListener("open", async () => {
      setLive("live", "live");
      delay = 500;
      try {
        store.load(await api.get("/demo/api/state"));
        document.body.dataset.ready = "1";
      } catch (error) {
        console.error(error);
      }
    });
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      store.apply(event);
      if (event.type === "callback_answer" && event.text) {
        const person = store.person(event.user_id);
        toast(event.text, { alert: event.show_alert, title: person ? `${fullName(person)} · bot answer` : "Bot answer" });
      }
    });
    socket.addEventListener("close", () => {
      setLive("offline", "reconnecting…");
      document.body.dataset.ready = "";
      setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
    });
  }

  // ------------------------------------------------------------------ start

  function start() {
    const tabs = document.getElementById("tabs");
    const panels = document.getElementById("panels");
    const built = new Map();
    const show = (id) => {
      for (const [panelId, panel] of built) {
        const active = panelId === id;
        const wasActive = !panel.el.hidden;
        panel.el.hidden = !active;
        if (!active && wasActive && panel.onHide) panel.onHide();
        panel.tab.classList.toggle("active", active);
        panel.tab.setAttribute("aria-selected", String(active));
        if (active && panel.onShow) panel.onShow();
      }
      if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
    };
    for (const spec of PANELS) {
      const panel = spec.build();
      panel.el.dataset.panel = spec.id;
      panel.el.hidden = true;
      panel.tab = h(
        "button",
        { type: "button", role: "tab", class: "tab", dataset: { tab: spec.id }, onclick: () => show(spec.id) },
        h("span", { class: "tab-label", text: spec.label }),
        h("span", { class: "tab-sub", text: spec.sub }),
      );
      tabs.append(panel.tab);
      panels.append(panel.el);
      built.set(spec.id, panel);
    }
    const initial = location.hash.slice(1);
    show(built.has(initial) ? initial : PANELS[0].id);
    connect();
  }

  window.demo = { store, renderFormatted, PANELS };
  start();
})();
