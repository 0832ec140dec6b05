// The stacked bar chart of the usage page, drawn by the vendored Chart.js (vendor/chart.umd.min.js, a
// classic script that defines window.Chart). The table under it carries the same numbers for screen readers.

// Tableau 10: distinguishable for most kinds of colour blindness; "other" is grey.
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f'];
const OTHER_COLOR = '#bab0ac';

let chart = null;

export function destroyChart() {
  chart?.destroy();
  chart = null;
}

// datasets: [{ label, other, data: [numbers per bucket] }]
export function drawChart(canvas, { labels, datasets, format }) {
  const Chart = window.Chart;
  if (!Chart) throw new Error('The chart library (vendor/chart.umd.min.js) did not load.');
  destroyChart();
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  chart = new Chart(canvas, {
    type: 'bar',
    data: {
      labels,
      datasets: datasets.map((d, i) => ({
        label: d.label,
        data: d.data,
        backgroundColor: d.other ? OTHER_COLOR : COLORS[i % COLORS.length],
        borderWidth: 0,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: { stacked: true, title: { display: true, text: 'UTC' }, ticks: { maxRotation: 0, autoSkip: true } },
        y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => format(v) } },
      },
      plugins: {
        legend: { position: 'bottom', labels: { boxWidth: 12 } },
        tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${format(ctx.parsed.y)}` } },
      },
    },
  });
}
