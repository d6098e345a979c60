// The Learners tab: "select every learner on this page" ticks the rows' boxes
// (delegated, so it keeps working after htmx swaps the results in).
document.addEventListener("change", function (event) {
  const all = event.target.closest("#learners-select-page");
  if (all) {
    document.querySelectorAll("#learners-table .learner-select").forEach(function (box) { box.checked = all.checked; });
    return;
  }
  if (event.target.closest("#learners-table .learner-select")) {
    const head = document.getElementById("learners-select-page");
    const boxes = Array.from(document.querySelectorAll("#learners-table .learner-select"));
    if (head) head.checked = boxes.length > 0 && boxes.every(function (box) { return box.checked; });
  }
});
