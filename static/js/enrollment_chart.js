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
          order: 2,
        },
        {
          type: "bar",
          label: "New enrollments per day",
          data: timeline.new,
          yAxisID: "new",
          backgroundColor: "#fd7e14",
          // Each bar on its own day: not grouped with the ends (the days of the two differ, and grouping
          // would put bars between days), a fixed width rather than "flex" (which spreads bars between
          // their neighbours, away from their day where gaps differ).
          grouped: false,
          barThickness: 8,
          minBarLength: 2,
          order: 1,
        },
        {
          // Enrollments that ended that day (whenever they began), on the same per-day axis as the new ones.
          type: "bar",
          label: "Ended per day",
          data: timeline.ended || [],
          yAxisID: "new",
          backgroundColor: "#6f42c1",
          // Narrower and in front: on a day with both, the new bar shows around it.
          grouped: false,
          barThickness: 4,
          minBarLength: 2,
          order: 0,
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
          // Half a day of room at either end, so that a bar on the first or the last day (today) shows whole.
          // Local midnight, as the adapter reads the points' dates ("2026-11-29" alone would be UTC's).
          min: new Date(timeline.start + "T00:00:00").getTime() - 43200000,
          max: new Date(timeline.end + "T00:00:00").getTime() + 43200000,
          offset: false,
          time: { unit: days > 120 ? "month" : "day", tooltipFormat: "d MMM yyyy", displayFormats: { day: "d MMM", month: "MMM yyyy" } },
          ticks: { maxRotation: 0, autoSkip: true },
        },
        active: { position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Active" } },
        new: { position: "right", beginAtZero: true, ticks: { precision: 0 }, grid: { drawOnChartArea: false }, title: { display: true, text: "Per day" } },
      },
      // The legend in the datasets' order, not their drawing order.
      plugins: { legend: { position: "bottom", labels: { sort: (a, b) => a.datasetIndex - b.datasetIndex } } },
    },
  });
});
