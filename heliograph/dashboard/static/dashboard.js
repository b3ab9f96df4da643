// Heliograph dashboard: the only script of our own. It draws the charts each page embeds
// as JSON data blocks (never executed), places session timeline spans, submits the
// selects marked data-autosubmit, and asks before a destructive form is sent.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const target of document.querySelectorAll("[data-chart]")) {
    const source = document.getElementById(target.dataset.chart);
    if (!source || typeof Plotly === "undefined") continue;
    const figure = JSON.parse(source.textContent);
    Plotly.newPlot(target, figure.data, figure.layout,
                   {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]});
  }
  for (const span of document.querySelectorAll(".timeline .span")) {
    span.style.left = span.dataset.left + "%";
    span.style.width = span.dataset.width + "%";
  }
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
