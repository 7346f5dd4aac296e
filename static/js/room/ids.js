// A fresh id for the next post or upload, so that a resend is recognised and a new one is not.
// crypto.randomUUID exists only on https and localhost; getRandomValues works on any origin
// (a plain-http LAN address too).
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
