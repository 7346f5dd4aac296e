// Settings: suggests the browser's own time zone when it differs from the saved one. The person
// confirms with "Use it" (which saves the form); without JavaScript the list is all there is.

const form = document.getElementById("time-zone");
const suggestion = document.getElementById("zone-suggestion");
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (form && suggestion && zone) {
  const select = form.querySelector("select[name=time_zone]");
  const known = [...select.options].some((option) => option.value === zone);
  if (known && select.value !== zone) {
    suggestion.querySelector("strong").textContent = zone;
    suggestion.hidden = false;
    suggestion.querySelector("button").addEventListener("click", () => {
      select.value = zone;
      form.requestSubmit();
    });
  }
}
