// The regulator dashboard's charts (Chart.js, served by the gateway). The server renders the
// series (and a table of the same numbers for readers without JavaScript); this script draws them
// and reloads them whenever the regulator feed reports an event.
"use strict";

(function () {
  const PALETTE = ["#1f4e79", "#b35900", "#2e7d32", "#8e24aa", "#c62828", "#00838f", "#6d4c41", "#455a64",
    "#ad1457", "#558b2f", "#283593", "#ef6c00", "#00695c", "#5d4037", "#37474f", "#9e9d24"];
  const LEVEL_COLOURS = { A: "#2e7d32", B: "#1f4e79", C: "#b35900", D: "#c62828" };
  const charts = {};

  function dataset(label, data, i, extra) {
    return Object.assign({ label: label, data: data, backgroundColor: PALETTE[i % PALETTE.length],
      borderColor: PALETTE[i % PALETTE.length], spanGaps: true }, extra || {});
  }

  function perDistrict(byName) {
    return Object.keys(byName).map(function (name, i) { return dataset(name, byName[name], i, { type: "line" }); });
  }

  function configs(s) {
    return {
      "chart-orders": { type: "bar", labels: s.dates, datasets: [
        dataset("下单", s.orders_placed, 0), dataset("完成", s.orders_completed, 2)] },
      "chart-complaints": { type: "line", labels: s.dates, datasets: [
        dataset("每千单投诉", s.complaints_per_thousand, 4)] },
      "chart-response": { type: "line", labels: s.dates, datasets: perDistrict(s.first_response_hours) },
      "chart-resolution": { type: "line", labels: s.dates, datasets: perDistrict(s.resolution_hours) },
      "chart-mediation": { type: "bar", labels: s.dates, datasets: [
        dataset("调解积压", s.mediation_backlog, 3), dataset("超时", s.sla_breaches, 4)] },
      "chart-shares": { type: "line", labels: s.dates, datasets: [
        dataset("绿码占比 %", s.green_share, 2), dataset("投保占比 %", s.insured_share, 0)] },
      "chart-credit": { type: "bar", labels: s.credit_levels.districts, stacked: true,
        datasets: ["A", "B", "C", "D"].map(function (level) {
          return { label: level + " 级", data: s.credit_levels.levels[level], backgroundColor: LEVEL_COLOURS[level] };
        }) },
      "chart-elderly": { type: "bar", labels: s.dates, datasets: [
        dataset("养老照护", s.elderly_care_orders, 1), dataset("适老化", s.age_friendly_orders, 5)] },
    };
  }

  function draw(series) {
    const all = configs(series);
    Object.keys(all).forEach(function (id) {
      const c = all[id];
      if (charts[id]) {
        charts[id].data.labels = c.labels;
        charts[id].data.datasets = c.datasets;
        charts[id].update();
        return;
      }
      const scales = c.stacked ? { x: { stacked: true }, y: { stacked: true, beginAtZero: true } }
        : { y: { beginAtZero: true } };
      charts[id] = new Chart(document.getElementById(id), {
        type: c.type, data: { labels: c.labels, datasets: c.datasets },
        options: { animation: false, responsive: true, maintainAspectRatio: false, scales: scales },
      });
    });
  }

  function reload() {
    const query = new URLSearchParams(new FormData(document.getElementById("filters")));
    return fetch("/regulator/indicators?" + query.toString(), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (series) { draw(series); document.body.dataset.reloads = String(Number(document.body.dataset.reloads || 0) + 1); });
  }

  function live() {
    const status = document.getElementById("live-status");
    const source = new EventSource("/regulator/live");
    let pending = null;
    source.addEventListener("open", function () { status.textContent = "实时更新：已连接"; document.body.dataset.live = "open"; });
    source.addEventListener("error", function () { status.textContent = "实时更新：连接中断，正在重连…"; });
    source.addEventListener("change", function () {
      if (pending) { return; }
      pending = setTimeout(function () { pending = null; reload().catch(function () {}); }, 1000);
    });
  }

  draw(JSON.parse(document.getElementById("series").textContent));
  document.body.dataset.charts = "drawn";
  live();
})();
