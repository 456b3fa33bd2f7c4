// billd dashboard: the little it does in the browser, all optional (every page works
// without it). Served from /dashboard/assets/; the CSP allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A filter's select applies itself when changed.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  // Buttons that act on many things ask first.
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
  // A button is pressed once: a slow answer does not turn into a second replay.
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", () => {
      for (const b of form.querySelectorAll("button")) b.disabled = true;
    });
  }
});
