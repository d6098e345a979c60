// Draws the Course info chart from the JSON the page embeds (no inline script).
document.addEventListener("DOMContentLoaded", function () {
  const canvas = document.getElementById("enrollment-chart");
  const data = document.getElementById("enrollment-timeline");
  if (!canvas || !data || typeof Chart === "undefined") return;
  const points = JSON.parse(data.textContent);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: points.map(function (p) { return p.day; }),
      datasets: [{ label: "Active enrollments", data: points.map(function (p) { return p.count; }), fill: true, tension: 0.2 }],
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { display: false } } },
  });
});
