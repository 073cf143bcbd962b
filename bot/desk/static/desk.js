// Progressive enhancement only: every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Filters apply as soon as one is changed (the 筛选 button stays for no-JS browsers).
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("change", () => form.requestSubmit());
  }
  // Ask before an action that cannot be undone from here.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // One press, one action: a slow network must not send a form twice.
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) return;
      for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
    });
  }
  for (const button of document.querySelectorAll("[data-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
});
