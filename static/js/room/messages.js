// The message list: inserts new and changed messages (rendered by the server's own template) in
// order and once, keeps the newest in view when the reader is at the bottom (else counts them in
// a "new below" button), shows who is around, and counts unread messages in a hidden tab's title.

import { fragment } from "./dom.js";
import { notify } from "./notify.js";

// As the server's `view::GROUP_MINUTES`: consecutive messages by one author this close are one group.
const GROUP_MINUTES = 5;

function nearBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 200;
}

function myName() {
  const logout = document.querySelector("header.top form button");
  return logout ? logout.textContent.replace(/^Log out /, "").trim() : "";
}

export class Messages {
  constructor(room, onLatest) {
    this.room = room;
    this.onLatest = onLatest;
    this.list = room.querySelector("ol.messages");
    this.newBelow = document.getElementById("new-below");
    this.baseTitle = document.title;
    this.unseen = 0;
    this.below = 0;
    this.held = new Map(); // Changes to messages being edited in place, shown once the editor closes.
    this.newBelow.addEventListener("click", () => {
      this.below = 0;
      this.newBelow.hidden = true;
      this.scrollToEnd();
    });
    window.addEventListener("scroll", () => {
      if (this.below && nearBottom()) {
        this.below = 0;
        this.newBelow.hidden = true;
      }
    }, { passive: true });
  }

  // The tab is seen again: its title stops counting and the icon loses its dot.
  seen() {
    this.unseen = 0;
    document.title = this.baseTitle;
    showUnreadIcon(false);
  }

  scrollToEnd() {
    this.list.lastElementChild?.scrollIntoView({ block: "end" });
  }

  newestId() {
    const items = this.list.querySelectorAll("li.message");
    return items.length ? Number(items[items.length - 1].id.slice(1)) : 0;
  }

  // Puts one message in place; returns whether it was new on this page.
  insert(message) {
    const existing = document.getElementById(`m${message.id}`);
    const item = fragment(message.html);
    if (existing?.querySelector(".edit-inline")) {
      this.held.set(existing.id, message);
      return false;
    }
    if (existing) {
      // The server renders one message alone: it keeps its place in its group.
      item.classList.toggle("continued", existing.classList.contains("continued"));
      existing.replaceWith(item);
      return false;
    }
    if (!this.onLatest || message.id < this.newestId()) return false; // Not on this page.
    if (this.list.hidden) {
      this.list.hidden = false;
      this.room.querySelector(".empty")?.remove();
      const pager = this.room.querySelector("nav.pager");
      if (pager && !pager.textContent.trim()) {
        pager.append(Object.assign(document.createElement("span"), {
          className: "muted",
          textContent: `This is the beginning of ${this.room.dataset.name}.`,
        }));
      }
    }
    this.placeAfterLast(item);
    return true;
  }

  // Shows a change held while the message was being edited.
  applyHeld(id) {
    const message = this.held.get(id);
    this.held.delete(id);
    if (message) this.insert(message);
  }

  // Appends a new message under a day heading when its day is not the last one's, and in its
  // author's group when it follows their message closely (as the server does for a page).
  placeAfterLast(item) {
    const messages = this.list.querySelectorAll("li.message");
    const last = messages[messages.length - 1];
    if (!last || last.dataset.day !== item.dataset.day) {
      const heading = document.createElement("li");
      heading.className = "day";
      heading.append(Object.assign(document.createElement("span"), { textContent: item.dataset.day }));
      this.list.append(heading);
    } else if (last.dataset.author === item.dataset.author
      && Date.parse(item.dataset.at) - Date.parse(last.dataset.at) <= GROUP_MINUTES * 60 * 1000) {
      item.classList.add("continued");
    }
    this.list.append(item);
  }

  // One poll answer.
  apply(data) {
    const stick = nearBottom();
    let added = 0;
    const fromOthers = [];
    for (const message of data.messages) {
      if (this.insert(message)) {
        added += 1;
        if (message.author !== myName()) fromOthers.push(message);
      }
    }
    if (added) {
      if (stick) {
        this.list.lastElementChild.scrollIntoView({ block: "end" });
      } else {
        this.below += added;
        this.newBelow.textContent = `${this.below} new message${this.below === 1 ? "" : "s"} ↓`;
        this.newBelow.hidden = false;
      }
    }
    if (fromOthers.length && document.visibilityState === "hidden") {
      this.unseen += fromOthers.length;
      document.title = `(${this.unseen}) ${this.baseTitle}`;
      showUnreadIcon(true);
      notify(this.room, fromOthers);
    }
    if (data.presence) showPresence(data.presence);
  }
}

function showPresence(presence) {
  const box = document.getElementById("presence");
  if (!box) return;
  box.replaceChildren(...presence.map((p) => {
    const item = document.createElement("li");
    item.className = `presence-${p.state}`;
    const dot = document.createElement("span");
    dot.className = "dot";
    const state = document.createElement("span");
    state.className = "muted";
    state.textContent = ` ${p.state}`;
    item.append(dot, p.username, state);
    return item;
  }));
}

// The tab's icon with a red dot while messages from others wait unseen.
function showUnreadIcon(unread) {
  const icon = document.querySelector("link[rel=icon]");
  if (icon) icon.href = unread ? "/static/favicon-unread.svg" : "/static/favicon.svg";
}
