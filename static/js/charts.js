// Draws every <canvas data-chart="ID"> from the JSON in <script type="application/json" id="ID">
// (Django's json_script): no inline script, so the Content-Security-Policy holds.
// The JSON is {"type": "line"|"bar"|"doughnut", "labels": [...], "datasets": [{"label", "data"}],
//              "stacked": bool, "money": bool, "links": optional}.
// "links", when given, is one list per dataset of one URL (or null) per label: clicking that
// bar (or point) opens the URL, e.g. a day's request log (issue 19). The same links are in the
// page's table beside the chart, for keyboards and screen readers.
(function () {
  "use strict";
  var palette = ["#6d3fd1", "#1e7a3c", "#d1783f", "#2f6fd1", "#b3261e", "#8a8a8a", "#c2a13b",
                 "#3fb7d1", "#d13f9b", "#4c4c4c"];
  // The one money format (witchcraft/platform/money.py money_text): 2 decimals from $1 up,
  // 4 below ("<$0.0001" under that), thousands separators, the sign in front.
  function formatMoney(value) {
    var n = Number(value);
    if (value === null || value === undefined || !isFinite(n)) { return "\u2014"; }
    var places = Math.abs(n) >= 0.99995 ? 2 : 4;
    var rounded = Number(Math.abs(n).toFixed(places));
    if (rounded === 0) { return n === 0 ? "$0.00" : "<$0.0001"; }
    var text = rounded.toLocaleString("en-US", {minimumFractionDigits: places,
                                                maximumFractionDigits: places});
    return (n < 0 ? "-$" : "$") + text;
  }
  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) { return; }
    var spec = JSON.parse(source.textContent);
    var datasets = spec.datasets.map(function (set, i) {
      var colour = palette[i % palette.length];
      return {
        label: set.label, data: set.data, borderColor: colour, tension: 0.2,
        backgroundColor: spec.type === "line" ? colour + "33" : colour,
        fill: spec.type === "line" && spec.stacked,
        maxBarThickness: 48
      };
    });
    var scales = spec.type === "doughnut" ? {} : {
      x: {stacked: !!spec.stacked},
      y: {stacked: !!spec.stacked, beginAtZero: true, ticks: spec.money ? {
        callback: function (v) { return formatMoney(v); }} : {}}
    };
    var tooltip = spec.money ? {callbacks: {label: function (item) {
      var doughnut = spec.type === "doughnut";
      var name = doughnut ? item.label : item.dataset.label;
      return (name ? name + ": " : "") + formatMoney(doughnut ? item.parsed : item.parsed.y);
    }}} : {};
    var options = {responsive: true, maintainAspectRatio: false, animation: false,
                   plugins: {legend: {position: "bottom"}, tooltip: tooltip},
                   scales: scales};
    if (spec.links) {
      var linkAt = function (chart, event) {
        var hits = chart.getElementsAtEventForMode(event, "nearest", {intersect: true}, false);
        if (!hits.length) { return null; }
        var set = spec.links[hits[0].datasetIndex] || [];
        return set[hits[0].index] || null;
      };
      options.onClick = function (event, elements, chart) {
        var url = linkAt(chart, event);
        if (url) { window.location.assign(url); }
      };
      options.onHover = function (event, elements, chart) {
        chart.canvas.style.cursor = linkAt(chart, event) ? "pointer" : "default";
      };
    }
    new Chart(canvas, {
      type: spec.type, data: {labels: spec.labels, datasets: datasets}, options: options
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
