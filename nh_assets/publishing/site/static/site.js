// Jump to a date: the newest day on or before the chosen date (days.json lists every day).
// Loaded from the site itself ('self' in the CSP); no inline script anywhere.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.jump");
  if (!form) return;
  const status = form.querySelector(".jump-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = form.querySelector("input[type=date]").value;
    if (!wanted) return;
    try {
      const response = await fetch(form.dataset.days, { credentials: "same-origin" });
      const days = await response.json();  // ascending ISO dates
      const found = days.filter((d) => d <= wanted).pop() || days[0];
      if (!found) { status.textContent = "No days published yet."; return; }
      if (found !== wanted) status.textContent = `No report on ${wanted}; opening ${found}.`;
      window.location.assign(`/reports/${found}/`);
    } catch (err) {
      status.textContent = "Could not load the list of days.";
    }
  });
});
