// Draws the Course info chart from the JSON the page embeds (no inline script:
// the Content Security Policy allows scripts from this site only).
// The x axis is a time axis (chartjs-adapter-date-fns), so a gap of one day and
// a gap of seven keep their true widths.
document.addEventListener("DOMContentLoaded", function () {
  const canvas = document.getElementById("enrollment-chart");
  const data = document.getElementById("enrollment-timeline");
  if (!canvas || !data || typeof Chart === "undefined") return;
  const timeline = JSON.parse(data.textContent);
  const days = (Date.parse(timeline.end) - Date.parse(timeline.start)) / 86400000;
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  new Chart(canvas, {
    data: {
      datasets: [
        {
          type: "line",
          label: "Active enrollments",
          data: timeline.active,
          yAxisID: "active",
          // The running total holds until the next day with enrollments, then steps up.
          stepped: "before",
          fill: true,
          pointRadius: 0,
          borderColor: "#0d6efd",
          backgroundColor: "rgba(13, 110, 253, 0.12)",
        },
        {
          type: "bar",
          label: "New enrollments per day",
          data: timeline.new,
          yAxisID: "new",
          backgroundColor: "#fd7e14",
          barThickness: "flex",
          maxBarThickness: 12,
          minBarLength: 2,
        },
      ],
    },
    options: {
      animation: reducedMotion ? false : {},
      maintainAspectRatio: false,
      parsing: { xAxisKey: "x", yAxisKey: "y" },
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: {
        x: {
          type: "time",
          min: timeline.start,
          max: timeline.end,
          offset: false,
          time: { unit: days > 120 ? "month" : "day", tooltipFormat: "d MMM yyyy", displayFormats: { day: "d MMM", month: "MMM yyyy" } },
          ticks: { maxRotation: 0, autoSkip: true },
        },
        active: { position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Active" } },
        new: { position: "right", beginAtZero: true, ticks: { precision: 0 }, grid: { drawOnChartArea: false }, title: { display: true, text: "New per day" } },
      },
      plugins: { legend: { position: "bottom" } },
    },
  });
});
