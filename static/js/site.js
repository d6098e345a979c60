// Small site behaviours kept out of inline scripts (Content Security Policy).
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const target = document.querySelector(button.dataset.copyTarget);
  if (!target) return;
  navigator.clipboard.writeText(target.innerText.trim()).then(function () {
    button.textContent = "Copied";
  });
});
document.addEventListener("submit", function (event) {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
// Progress bars carry their width as data (no inline styles under the CSP).
function applyProgressWidths(root) {
  (root || document).querySelectorAll(".progress-bar[data-width]").forEach(function (bar) {
    bar.style.width = bar.dataset.width + "%";
  });
}
document.addEventListener("DOMContentLoaded", function () { applyProgressWidths(); });
document.addEventListener("htmx:afterSwap", function (event) { applyProgressWidths(event.target.parentNode || document); });
// After a submit that came back with errors, the focus goes to the first field in error, so a
// keyboard or screen-reader user lands on what to correct. A page that chose its own focus
// (an autofocus result heading or error summary) keeps it.
function focusFirstError(root) {
  if (!root || root.querySelector("[autofocus]")) return;
  const invalid = root.querySelector("input.is-invalid, select.is-invalid, textarea.is-invalid, [aria-invalid='true']");
  if (invalid) invalid.focus();
}
document.addEventListener("DOMContentLoaded", function () { focusFirstError(document); });
document.addEventListener("htmx:afterSettle", function (event) { focusFirstError(event.detail.elt); });
