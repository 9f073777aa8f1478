// det's experiment page: the report (data embedded as window.DET_DATA) and the live view of
// `det-run serve` (window.DET_LIVE: the JSON to fetch and how often). Charts are Plotly's; this
// file only arranges the experiment's data for them, and draws the two tables.
(function () {
  "use strict";

  // The store writes a non-finite metric as the string "NaN", "Infinity" or "-Infinity".
  function num(v) {
    if (typeof v === "number") return v;
    if (v === "NaN") return NaN;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    return null;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v !== "number") return String(v);
    if (!isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : v.toPrecision(6).replace(/\.?0+$/, "");
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function seconds(iso) { var t = Date.parse(iso); return isNaN(t) ? null : t / 1000; }
  function duration(s) {
    if (s === null || !isFinite(s)) return "";
    if (s < 60) return s.toFixed(0) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }
  var palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];
  function color(i) { return palette[i % palette.length]; }
  var plotConfig = { displaylogo: false, responsive: true };
  var state = { sortKey: "number", sortDir: 1, trial: null, data: null };

  function better(a, b, smaller) { return smaller ? a < b : a > b; }

  function renderFacts(d) {
    var e = d.experiment, dl = document.getElementById("facts");
    dl.textContent = "";
    var start = seconds(e.start_time), end = e.end_time ? seconds(e.end_time) : Date.now() / 1000;
    var counts = {};
    d.trials.forEach(function (t) { counts[t.state] = (counts[t.state] || 0) + 1; });
    var best = d.trials.filter(function (t) { return t.best_metric !== null; })
      .sort(function (a, b) { return e.smaller_is_better ? a.best_metric - b.best_metric : b.best_metric - a.best_metric; })[0];
    var facts = [
      ["Experiment", e.id + ": " + e.name, "experiment"],
      ["State", e.state, "state"],
      ["Searcher", e.searcher + (e.max_trials ? " (max_trials " + e.max_trials + ")" : ""), "searcher"],
      ["Metric", e.metric + (e.smaller_is_better ? " (smaller is better)" : " (larger is better)"), "metric"],
      ["Trials", d.trials.length + " (" + Object.keys(counts).sort().map(function (k) { return counts[k] + " " + k; }).join(", ") + ")", "trials"],
      ["Best", best ? fmt(best.best_metric) + " (trial " + best.number + ")" : "", "best"],
      ["Started", e.start_time, "start"],
      ["Wall time", duration(start !== null ? end - start : null), "wall"],
      ["Run directory", e.run_dir, "run_dir"],
      ["Description", e.description || "", "description"]
    ];
    facts.forEach(function (f) {
      dl.appendChild(el("dt", {}, f[0]));
      var dd = el("dd", { "data-fact": f[2] }, f[1]);
      if (f[2] === "best" && best) dd.setAttribute("data-value", String(best.best_metric));
      dl.appendChild(dd);
    });
    document.getElementById("subtitle").textContent =
      e.searcher + " search on " + e.metric + " \u00b7 " + e.state + " \u00b7 generated " + d.generated;
  }

  function trialColumns(d) {
    var cols = [
      { key: "number", label: "Trial", get: function (t) { return t.number; } },
      { key: "state", label: "State", text: true, get: function (t) { return t.state; } }
    ];
    d.hparam_names.forEach(function (h) {
      cols.push({ key: "hp:" + h, label: h, text: false, get: function (t) { return t.hparams[h]; } });
    });
    cols.push({ key: "best", label: "Best " + d.experiment.metric, get: function (t) { return t.best_metric; } });
    cols.push({ key: "latest", label: "Latest " + d.experiment.metric, get: function (t) { return t.latest_metric; } });
    cols.push({ key: "batches", label: "Batches", get: function (t) { return t.batches; } });
    cols.push({ key: "restarts", label: "Restarts", get: function (t) { return t.restarts; } });
    cols.push({ key: "checkpoints", label: "Checkpoints", get: function (t) {
      return t.checkpoints.filter(function (c) { return c.state !== "DELETED"; }).length; } });
    return cols;
  }

  function renderTrials(d) {
    var table = document.getElementById("trials-table"), cols = trialColumns(d);
    table.textContent = "";
    var head = el("tr");
    cols.forEach(function (c) {
      var th = el("th", { "data-col": c.key, class: c.text ? "text" : "" }, c.label);
      if (state.sortKey === c.key) th.className += state.sortDir > 0 ? " sorted-asc" : " sorted-desc";
      th.addEventListener("click", function () {
        state.sortDir = state.sortKey === c.key ? -state.sortDir : 1;
        state.sortKey = c.key;
        renderTrials(state.data);
      });
      head.appendChild(th);
    });
    table.appendChild(el("thead")).appendChild(head);
    var sortCol = cols.filter(function (c) { return c.key === state.sortKey; })[0] || cols[0];
    var rows = d.trials.slice().sort(function (a, b) {
      var x = sortCol.get(a), y = sortCol.get(b);
      if (x === y) return a.number - b.number;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * state.sortDir;
    });
    var body = table.appendChild(el("tbody"));
    var bestNumber = null, bestValue = null;
    d.trials.forEach(function (t) {
      if (t.best_metric !== null && (bestValue === null || better(t.best_metric, bestValue, d.experiment.smaller_is_better))) {
        bestValue = t.best_metric; bestNumber = t.number;
      }
    });
    rows.forEach(function (t) {
      var tr = el("tr", { "data-trial": String(t.number), "data-validations": String(t.validation.batches.length) });
      if (t.number === bestNumber) tr.className = "best";
      cols.forEach(function (c) {
        var v = c.get(t);
        var td = el("td", { "data-col": c.key }, fmt(v));
        if (c.text || typeof v === "string") td.className = "text";
        if (c.key === "state") td.className += " state-" + v;
        if (v !== null && v !== undefined) td.setAttribute("data-value", typeof v === "string" ? v : JSON.stringify(v));
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () { selectTrial(t.number); });
      body.appendChild(tr);
    });
  }

  function selectTrial(n) {
    state.trial = n;
    document.getElementById("trial-select").value = String(n);
    renderCurves(state.data);
    document.getElementById("curves").scrollIntoView({ behavior: "smooth" });
  }

  function renderCurves(d) {
    var sel = document.getElementById("trial-select");
    var numbers = d.trials.map(function (t) { return String(t.number); });
    if (sel.options.length !== numbers.length) {
      sel.textContent = "";
      numbers.forEach(function (n) { sel.appendChild(el("option", { value: n }, "trial " + n)); });
      sel.onchange = function () { state.trial = Number(sel.value); renderCurves(state.data); };
    }
    if (state.trial === null && d.trials.length) state.trial = d.best_trial || d.trials[0].number;
    sel.value = String(state.trial);
    var t = d.trials.filter(function (x) { return x.number === state.trial; })[0];
    var traces = [];
    if (t) {
      Object.keys(t.training.metrics).sort().forEach(function (m, i) {
        traces.push({ x: t.training.batches, y: t.training.metrics[m].map(num), name: "training " + m,
                      mode: "lines", line: { color: color(i) } });
      });
      Object.keys(t.validation.metrics).sort().forEach(function (m, i) {
        traces.push({ x: t.validation.batches, y: t.validation.metrics[m].map(num), name: "validation " + m,
                      mode: "lines+markers", line: { color: color(i + 5), dash: "dash" }, yaxis: "y2" });
      });
    }
    Plotly.react("curves-chart", traces, {
      margin: { t: 10, r: 60 }, xaxis: { title: "batches" },
      yaxis: { title: "training" }, yaxis2: { title: "validation", overlaying: "y", side: "right" },
      legend: { orientation: "h", y: -0.2 }
    }, plotConfig);
  }

  function renderOverlay(d) {
    var m = d.experiment.metric, traces = [];
    d.trials.forEach(function (t, i) {
      var y = t.validation.metrics[m];
      if (!y) return;
      traces.push({ x: t.validation.batches, y: y.map(num), name: "trial " + t.number, mode: "lines+markers",
                    line: { color: color(i) }, marker: { size: 5 } });
    });
    var shapes = [], annotations = [];
    (d.experiment.rungs_batches || []).forEach(function (r, i) {
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: r, x1: r, y0: 0, y1: 1,
                    line: { color: "#888", dash: "dot", width: 1 } });
      annotations.push({ x: r, y: 1, xref: "x", yref: "paper", text: "rung " + i, showarrow: false,
                         yanchor: "bottom", font: { size: 11, color: "#555" } });
    });
    Plotly.react("overlay-chart", traces, {
      margin: { t: 24 }, xaxis: { title: "batches" }, yaxis: { title: m }, shapes: shapes,
      annotations: annotations, showlegend: d.trials.length <= 20
    }, plotConfig);
  }

  // The hyperparameters that vary among these trials (a constant one says nothing on a chart);
  // all of them when none does.
  function varying(d, trials) {
    var names = d.hparam_names.filter(function (h) {
      return new Set(trials.map(function (t) { return JSON.stringify(t.hparams[h]); })).size > 1;
    });
    return names.length ? names : d.hparam_names;
  }

  function renderParcoords(d) {
    var done = d.trials.filter(function (t) { return t.best_metric !== null; });
    var dims = varying(d, done).map(function (h) {
      var vals = done.map(function (t) { return t.hparams[h]; });
      if (vals.every(function (v) { return typeof v === "number"; })) return { label: h, values: vals };
      var cats = Array.from(new Set(vals.map(String))).sort();
      return { label: h, values: vals.map(function (v) { return cats.indexOf(String(v)); }),
               tickvals: cats.map(function (c, i) { return i; }), ticktext: cats };
    });
    var metric = done.map(function (t) { return t.best_metric; });
    dims.push({ label: d.experiment.metric, values: metric });
    Plotly.react("parcoords-chart", [{
      type: "parcoords", dimensions: dims,
      line: { color: metric, colorscale: "Viridis", reversescale: !d.experiment.smaller_is_better, showscale: true,
              colorbar: { title: d.experiment.metric } }
    }], { margin: { t: 40, l: 60, r: 60 } }, plotConfig);
  }

  function renderScatter(d) {
    var grid = document.getElementById("scatter-grid");
    var done = d.trials.filter(function (t) { return t.best_metric !== null; });
    var names = varying(d, done);
    if (grid.getAttribute("data-hparams") !== names.join("\n")) {  // the charts, once per set
      grid.textContent = "";
      grid.setAttribute("data-hparams", names.join("\n"));
    }
    names.forEach(function (h, i) {
      var id = "scatter-" + i;
      if (!document.getElementById(id)) grid.appendChild(el("div", { id: id, class: "chart", "data-hparam": h }));
      Plotly.react(id, [{
        x: done.map(function (t) { return t.hparams[h]; }), y: done.map(function (t) { return t.best_metric; }),
        text: done.map(function (t) { return "trial " + t.number; }), mode: "markers", type: "scatter",
        marker: { size: 8, color: color(i) }
      }], { margin: { t: 10, r: 10 }, xaxis: { title: h }, yaxis: { title: d.experiment.metric } }, plotConfig);
    });
  }

  function renderBest(d) {
    var e = d.experiment, start = seconds(e.start_time), points = [];
    d.trials.forEach(function (t) {
      var y = t.validation.metrics[e.metric] || [];
      t.validation.time.forEach(function (time, i) {
        var v = num(y[i]);
        if (v !== null && isFinite(v)) points.push({ t: seconds(time) - start, v: v, trial: t.number });
      });
    });
    points.sort(function (a, b) { return a.t - b.t; });
    var xs = [], ys = [], text = [], best = null;
    points.forEach(function (p) {
      if (best === null || better(p.v, best.v, e.smaller_is_better)) best = p;
      xs.push(p.t); ys.push(best.v); text.push("trial " + best.trial);
    });
    Plotly.react("best-chart", [
      { x: xs, y: ys, text: text, mode: "lines", line: { shape: "hv", color: "#1a7f37" }, name: "best so far" },
      { x: points.map(function (p) { return p.t; }), y: points.map(function (p) { return p.v; }),
        text: points.map(function (p) { return "trial " + p.trial; }), mode: "markers", name: "validations",
        marker: { color: "#9aa4b2", size: 5 } }
    ], { margin: { t: 10 }, xaxis: { title: "seconds since the experiment started" }, yaxis: { title: e.metric } }, plotConfig);
  }

  function renderCheckpoints(d) {
    var table = document.getElementById("checkpoints-table");
    table.textContent = "";
    var head = el("tr");
    ["Trial", "Batches", d.experiment.metric, "State", "Time", "UUID", "Directory"].forEach(function (h, i) {
      head.appendChild(el("th", { class: i >= 3 ? "text" : "" }, h));
    });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    d.trials.forEach(function (t) {
      t.checkpoints.forEach(function (c) {
        var tr = el("tr", { "data-uuid": c.uuid });
        [t.number, c.batches, c.metric, c.state, c.time, c.uuid, c.path].forEach(function (v, i) {
          tr.appendChild(el("td", { class: i >= 3 ? "text" : "" }, fmt(v)));
        });
        body.appendChild(tr);
      });
    });
  }

  function render(d) {
    state.data = d;
    document.title = "det: " + d.experiment.name + " (experiment " + d.experiment.id + ")";
    document.getElementById("title").textContent = d.experiment.name + " \u2014 experiment " + d.experiment.id;
    renderFacts(d);
    renderTrials(d);
    renderCurves(d);
    renderOverlay(d);
    renderParcoords(d);
    renderScatter(d);
    renderBest(d);
    renderCheckpoints(d);
    document.getElementById("config-text").textContent = JSON.stringify(d.experiment.config, null, 2);
    document.body.setAttribute("data-rendered", d.generated);
  }

  function poll() {
    var live = window.DET_LIVE, status = document.getElementById("live-status");
    fetch(live.url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(live.url + ": HTTP " + r.status);
      return r.json();
    }).then(function (d) {
      render(d);
      status.className = "live";
      status.textContent = "live \u00b7 updated " + new Date().toLocaleTimeString();
    }).catch(function (err) {
      status.className = "muted";
      status.textContent = "live view: " + err.message + " (retrying)";
    }).then(function () { setTimeout(poll, live.interval_ms); });
  }

  if (window.DET_LIVE) poll(); else render(window.DET_DATA);
})();
