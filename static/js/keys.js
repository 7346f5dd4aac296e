// Keyboard shortcuts on every logged-in page (listed on /help): `/` search, `c` composer,
// Alt+Shift+↓/↑ next/previous room with unread messages, Esc marks the room read, `?` help.

const typing = (target) => target instanceof HTMLElement
  && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));

function unreadRoom(step) {
  const links = [...document.querySelectorAll(".sidebar a[data-slug]")];
  if (!links.length) return null;
  const here = links.findIndex((a) => a.getAttribute("aria-current") === "page");
  const start = here >= 0 ? here : step > 0 ? -1 : links.length;
  for (let i = 1; i <= links.length; i += 1) {
    const at = (((start + step * i) % links.length) + links.length) % links.length;
    if (links[at].classList.contains("unread")) return links[at];
  }
  return null;
}

async function markRead(room) {
  const slug = room.dataset.slug;
  const response = await fetch(`/rooms/${encodeURIComponent(slug)}/read`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf: room.dataset.csrf }),
  }).catch(() => null);
  if (!response?.ok) return;
  const link = document.querySelector(`.sidebar a[data-slug="${CSS.escape(slug)}"]`);
  link?.classList.remove("unread");
  link?.querySelectorAll(".badge, .mention-mark").forEach((mark) => mark.remove());
  document.getElementById("new")?.remove();
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing) return;
  const room = document.querySelector("article.room[data-slug]");
  if (event.altKey && event.shiftKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    const next = unreadRoom(event.key === "ArrowDown" ? 1 : -1);
    if (next) {
      event.preventDefault();
      location.href = next.href;
    }
    return;
  }
  if (event.key === "Escape" && typing(event.target) && event.target.id === "body") {
    event.target.blur();
    return;
  }
  if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    event.preventDefault();
    const search = document.querySelector("header.top input[type=search]");
    if (search && search.offsetParent !== null) search.focus();
    else location.href = "/search";
  } else if (event.key === "c") {
    const composer = document.getElementById("body");
    if (composer) {
      event.preventDefault();
      composer.focus();
    }
  } else if (event.key === "Escape" && room && !document.querySelector("details.actions[open], dialog[open]")) {
    markRead(room);
  } else if (event.key === "?") {
    location.href = "/help";
  }
});
