// Scrolling up to the pager's "older" link loads the older page in place.

export function loadOlderOnScroll(room, list) {
  const older = room.querySelector('nav.pager a[rel="prev"]');
  if (!older || !("IntersectionObserver" in window)) return;
  let loading = false;
  const observer = new IntersectionObserver(async (entries) => {
    if (loading || !entries.some((e) => e.isIntersecting)) return;
    loading = true;
    try {
      const response = await fetch(older.href, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const items = [...page.querySelectorAll("ol.messages > li")].filter((li) => !li.id || !document.getElementById(li.id));
      const before = document.documentElement.scrollHeight;
      list.prepend(...items);
      window.scrollBy(0, document.documentElement.scrollHeight - before);
      const next = page.querySelector('nav.pager a[rel="prev"]');
      if (next) {
        older.href = next.href;
      } else {
        older.replaceWith(Object.assign(document.createElement("span"), { className: "muted", textContent: "This is the beginning of the room." }));
        observer.disconnect();
      }
    } finally {
      loading = false;
    }
  });
  observer.observe(older);
}
