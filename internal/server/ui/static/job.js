// The job page: polls /ui/api/jobs/{id}/ for the job, its new console
// lines and its new log entries (once a second while it runs, at once
// while more are waiting), and updates the page in place.
"use strict";
(function () {
  var root = document.getElementById("job");
  var id = root.dataset.id;
  var $ = function (i) { return document.getElementById(i); };
  var terminal = { SUCCEEDED: true, FAILED: true, STOPPED: true };
  var consoleAfter = 0, logsAfter = 0;

  // Stop: confirm in a dialog, then send the form (POST with the CSRF field).
  var stopForm = $("stop-form"), dialog = $("stop-dialog");
  stopForm.addEventListener("submit", function (ev) {
    if (stopForm.dataset.confirmed) return;
    ev.preventDefault();
    dialog.returnValue = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", function () {
    if (dialog.returnValue === "stop") {
      stopForm.dataset.confirmed = "1";
      stopForm.requestSubmit();
    }
  });

  // ---- job fields, progress
  function updateJob(job, now) {
    var st = $("status");
    st.textContent = job.status;
    st.dataset.status = job.status;
    var q = job.meta && job.meta.queue;
    $("queue").textContent = job.status === "PENDING" && q && q.position ? "position " + q.position + " in the agent's queue" : "";
    $("duration").textContent = ui.fmtDuration(ui.duration(job, now)) + (job.completed ? "" : job.started ? " so far" : "");
    stopForm.hidden = !!terminal[job.status];
    var pr = job.progress_record || {};
    var cur = pr.current_progress || {};
    var ov = ui.overall(job);
    var eta = !terminal[job.status] && cur.time_remaining != null ? " · about " + ui.fmtDuration(cur.time_remaining) + " left" : "";
    ui.setBar($("overall"), ov, (Math.round(ov * 10) / 10) + "%" + eta, job.status === "FAILED");
    var steps = (pr.record && pr.record.steps) || {};
    var names = Object.keys(steps).sort(function (a, b) {
      var oa = steps[a].order, ob = steps[b].order;
      if (oa != null && ob != null && oa !== ob) return oa - ob;
      if ((oa == null) !== (ob == null)) return oa == null ? 1 : -1;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    var kids = [];
    names.forEach(function (name) {
      var s = steps[name] || {};
      var b = ui.bar("Step " + name);
      b.dataset.step = name;
      var failed = s.status === "failed";
      ui.setBar(b, s.percent, (Math.round((s.percent || 0) * 10) / 10) + "%" + (failed ? " failed" : ""), failed);
      var etaText = failed ? "failed" : s.percent >= 100 ? "done" : s.time_remaining != null ? "ETA " + ui.fmtDuration(s.time_remaining) : terminal[job.status] ? "" : "ETA unknown";
      if (s.proportion) etaText += (etaText ? " · " : "") + s.proportion + "% of the run";
      kids.push(ui.el("span", { text: name }), b, ui.el("span", { class: "eta", text: etaText }));
    });
    $("steps").replaceChildren.apply($("steps"), kids);
    var result = job.result;
    // A failed job has meta.error {error_type, message}; its result may be {"error": …} too.
    var err = (job.meta && job.meta.error) || (job.status === "FAILED" && result && result.error != null ? { message: result.error } : null);
    $("result").textContent = result == null ? (terminal[job.status] ? "none" : "–") : ui.pretty(result);
    $("error-section").hidden = !err;
    if (err) $("error").textContent = (err.error_type ? err.error_type + ": " : "") + (typeof err.message === "string" ? err.message : ui.pretty(err.message));
    var snap = job.metrics_record && job.metrics_record.record && job.metrics_record.record.steps;
    var rows = [];
    if (snap) Object.keys(snap).sort().forEach(function (cat) {
      var vals = snap[cat] || {};
      Object.keys(vals).sort().forEach(function (k) {
        var v = vals[k];
        rows.push(ui.el("tr", null, [ui.el("td", { text: cat }), ui.el("td", { text: k }), ui.el("td", { class: "num", text: typeof v === "object" ? JSON.stringify(v) : String(v) })]));
      });
    });
    if (!rows.length) rows.push(ui.el("tr", null, [ui.el("td", { colspan: "3", class: "muted", text: "No snapshots." })]));
    var tb = $("snapshots").querySelector("tbody");
    tb.replaceChildren.apply(tb, rows);
  }

  // ---- metric charts: one SVG line chart per series category/key
  var series = {}, dirty = {};
  function addPoint(d) {
    if (!d || typeof d.value !== "number" || !isFinite(d.value)) return;
    var key = (d.category || "") + "/" + (d.key || "");
    var s = series[key];
    if (!s) {
      s = series[key] = { points: [], fig: null, min: Infinity, max: -Infinity };
    }
    s.points.push(d.value);
    s.min = Math.min(s.min, d.value);
    s.max = Math.max(s.max, d.value);
    dirty[key] = true;
  }
  function drawCharts() {
    var keys = Object.keys(dirty);
    dirty = {};
    if (Object.keys(series).length) $("metrics-empty").hidden = true;
    keys.sort().forEach(function (key) {
      var s = series[key];
      if (!s.fig) {
        s.svg = ui.svg("svg", { viewBox: "0 0 320 160", role: "img" });
        s.cap = ui.el("figcaption");
        s.fig = ui.el("figure", { class: "chart", "data-series": key }, [s.svg, s.cap]);
        $("charts").append(s.fig);
      }
      var pts = s.points, n = pts.length;
      var lo = s.min, hi = s.max;
      if (hi === lo) { hi += 1; lo -= 1; }
      var L = 44, R = 312, T = 10, B = 136;
      var x = function (i) { return n === 1 ? (L + R) / 2 : L + (R - L) * i / (n - 1); };
      var y = function (v) { return B - (B - T) * (v - lo) / (hi - lo); };
      var kids = [
        ui.svg("line", { class: "axis", x1: L, y1: B, x2: R, y2: B }),
        ui.svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: B })
      ];
      var t1 = ui.svg("text", { x: L - 4, y: T + 8, "text-anchor": "end" }); t1.textContent = fmtNum(hi);
      var t2 = ui.svg("text", { x: L - 4, y: B, "text-anchor": "end" }); t2.textContent = fmtNum(lo);
      var t3 = ui.svg("text", { x: L, y: B + 16 }); t3.textContent = "1";
      var t4 = ui.svg("text", { x: R, y: B + 16, "text-anchor": "end" }); t4.textContent = String(n);
      kids.push(t1, t2, t3, t4);
      var step = Math.max(1, Math.ceil(n / 2000)); // at most ~2000 vertices
      var coords = [];
      for (var i = 0; i < n; i += step) coords.push(x(i).toFixed(1) + "," + y(pts[i]).toFixed(1));
      if ((n - 1) % step) coords.push(x(n - 1).toFixed(1) + "," + y(pts[n - 1]).toFixed(1));
      kids.push(ui.svg("polyline", { class: "line", points: coords.join(" ") }));
      if (n <= 60) for (var j = 0; j < n; j++) kids.push(ui.svg("circle", { class: "dot", cx: x(j).toFixed(1), cy: y(pts[j]).toFixed(1), r: 2.5 }));
      s.svg.replaceChildren.apply(s.svg, kids);
      s.svg.setAttribute("aria-label", "Line chart of " + key + ": " + n + " points, last " + fmtNum(pts[n - 1]));
      s.fig.dataset.points = String(n);
      s.cap.textContent = key + " — " + n + " point" + (n === 1 ? "" : "s") + ", last " + fmtNum(pts[n - 1]) + ", min " + fmtNum(s.min) + ", max " + fmtNum(s.max);
    });
  }
  function fmtNum(v) {
    if (Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0)) return v.toExponential(2);
    return String(Math.round(v * 1e4) / 1e4);
  }

  // ---- visualizations and trials
  function addImage(e) {
    if (typeof e.file !== "string" || !/^data:image\/(png|jpeg|gif|webp|bmp);base64,/i.test(e.file)) return;
    var d = e.data || {};
    var caption = e.event === "visualization" ? (d.category || e.step || "") + " / " + (d.group || "") + " #" + (d.index != null ? d.index : "") : e.event;
    var img = ui.el("img", { alt: caption });
    img.src = e.file;
    $("vis").append(ui.el("figure", null, [img, ui.el("figcaption", { text: caption })]));
    $("vis-section").hidden = false;
  }
  var trialSort = { col: null, dir: 1 }, lastTrials = null;
  function showTrials(d) {
    if (!d || typeof d.trials !== "object" || !d.trials) return;
    lastTrials = d;
    $("trials-section").hidden = false;
    var cols = [].concat(d.base || [], d.hyperparameters || [], d.metrics || []);
    Object.keys(d.trials).forEach(function (tid) {
      Object.keys(d.trials[tid] || {}).forEach(function (c) { if (cols.indexOf(c) < 0) cols.push(c); });
    });
    cols = ["trial"].concat(cols);
    var head = ui.el("tr", null, cols.map(function (c) {
      var sorted = trialSort.col === c;
      var btn = ui.el("button", { type: "button", text: c + (sorted ? (trialSort.dir > 0 ? " ▲" : " ▼") : "") });
      btn.addEventListener("click", function () {
        trialSort = { col: c, dir: trialSort.col === c ? -trialSort.dir : 1 };
        showTrials(lastTrials);
      });
      return ui.el("th", { scope: "col", "aria-sort": sorted ? (trialSort.dir > 0 ? "ascending" : "descending") : "none" }, [btn]);
    }));
    var ids = Object.keys(d.trials);
    var val = function (tid, c) { return c === "trial" ? tid : (d.trials[tid] || {})[c]; };
    if (trialSort.col) ids.sort(function (a, b) {
      var va = val(a, trialSort.col), vb = val(b, trialSort.col);
      if (va == null) return 1; if (vb == null) return -1;
      return (va < vb ? -1 : va > vb ? 1 : 0) * trialSort.dir;
    });
    var rows = ids.map(function (tid) {
      var best = tid === d.best_trial;
      return ui.el("tr", { class: best ? "best" : "" }, cols.map(function (c) {
        var v = val(tid, c);
        var text = v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
        if (c === "trial" && best) text += " (best)";
        return ui.el("td", { class: typeof v === "number" ? "num" : "", text: text });
      }));
    });
    var t = $("trials");
    t.querySelector("thead").replaceChildren(head);
    var tb = t.querySelector("tbody");
    tb.replaceChildren.apply(tb, rows);
  }

  // ---- log events, filterable by level and text
  // The table keeps the last LOG_CAP entries; older ones leave the page.
  var LOG_CAP = 5000, dropped = 0;
  var levelSel = $("log-level"), textIn = $("log-text"), levels = {}, logRows = [];
  function filterLogs() {
    var lv = levelSel.value, txt = textIn.value.toLowerCase(), shown = 0;
    logRows.forEach(function (r) {
      var ok = (!lv || r.level === lv) && (!txt || r.text.indexOf(txt) >= 0);
      r.tr.hidden = !ok;
      if (ok) shown++;
    });
    $("log-count").textContent = shown + " of " + logRows.length + " events" + (dropped ? " (the " + dropped + " oldest not shown)" : "");
  }
  levelSel.addEventListener("change", filterLogs);
  textIn.addEventListener("input", filterLogs);
  function addLog(e) {
    var level = e.level || "info";
    if (!levels[level]) {
      levels[level] = true;
      levelSel.append(ui.el("option", { value: level, text: level }));
    }
    var data = e.data;
    var text = e.event === "message" && data && typeof data.content === "string" ? data.content : JSON.stringify(data);
    if (e.file) text += " [file]";
    var tr = ui.el("tr", { "data-level": level }, [
      ui.el("td", { text: e.datetime ? ui.fmtTime(e.datetime) : "", title: e.datetime || "" }),
      ui.el("td", null, [ui.el("span", { class: "level level-" + level.replace(/[^a-z]/g, ""), text: level })]),
      ui.el("td", { text: e.event }),
      ui.el("td", { text: e.step || "" }),
      ui.el("td", { text: text })
    ]);
    logRows.push({ tr: tr, level: level, text: (e.event + " " + (e.step || "") + " " + text).toLowerCase() });
    return tr;
  }
  function handleLogs(entries) {
    var frag = document.createDocumentFragment();
    entries.forEach(function (e) {
      logsAfter = e.id;
      if (e.event === "metric") { addPoint(e.data); return; }
      if (e.file) addImage(e);
      if (e.event === "trials") showTrials(e.data);
      frag.append(addLog(e));
    });
    if (frag.childNodes.length) {
      var tb = $("logs").querySelector("tbody");
      var wrap = tb.closest(".logs-wrap");
      var atEnd = wrap.scrollTop + wrap.clientHeight >= wrap.scrollHeight - 4;
      tb.append(frag);
      if (logRows.length > LOG_CAP) {
        var gone = logRows.splice(0, logRows.length - LOG_CAP);
        gone.forEach(function (r) { r.tr.remove(); });
        dropped += gone.length;
      }
      filterLogs();
      if (atEnd) wrap.scrollTop = wrap.scrollHeight;
    }
    drawCharts();
  }

  // ---- console: every line kept, the last CAP shown until "Show all"
  var CAP = 2000, lines = [], showAll = false, pre = $("console"), follow = $("follow"), showAllBtn = $("show-all");
  var shownFrom = 0; // index of the first line in the <pre>
  showAllBtn.addEventListener("click", function () {
    showAll = true;
    showAllBtn.hidden = true;
    redrawConsole();
  });
  function redrawConsole() {
    shownFrom = showAll ? 0 : Math.max(0, lines.length - CAP);
    pre.textContent = lines.length ? lines.slice(shownFrom).join("\n") + "\n" : "";
  }
  function handleConsole(batch) {
    if (!batch.length) return;
    var add = [];
    batch.forEach(function (l) { consoleAfter = l.seq; add.push(l.line); });
    var start = lines.length;
    Array.prototype.push.apply(lines, add);
    if (!showAll && lines.length - shownFrom > CAP * 1.5) redrawConsole(); // trim to the last CAP
    else pre.append(document.createTextNode(add.join("\n") + "\n"));
    var hidden = showAll ? 0 : Math.max(0, lines.length - CAP);
    showAllBtn.hidden = showAll || hidden === 0;
    showAllBtn.textContent = "Show all " + lines.length + " lines";
    $("console-count").textContent = lines.length + " line" + (lines.length === 1 ? "" : "s") + (shownFrom ? " (the first " + shownFrom + " hidden)" : "");
    pre.dataset.lines = String(lines.length);
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
    void start;
  }
  pre.addEventListener("scroll", function () {
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (!atEnd && follow.checked && document.activeElement === pre) follow.checked = false;
  });

  // ---- polling
  var failures = 0, inflight = false;
  function poll() {
    if (inflight) return; // the answer in flight schedules the next poll
    inflight = true;
    ui.getJSON("/ui/api/jobs/" + encodeURIComponent(id) + "/?console=" + consoleAfter + "&logs=" + logsAfter).then(function (d) {
      inflight = false;
      failures = 0;
      var now = Date.parse(d.now) || Date.now();
      handleConsole(d.console);
      handleLogs(d.logs);
      updateJob(d.job, now);
      if (d.more) { clearTimeout(timer); timer = setTimeout(poll, 0); return; }
      if (terminal[d.job.status] && d.console_closed) { root.dataset.done = "1"; return; }
      schedule(terminal[d.job.status] ? 2000 : 1000);
    }).catch(function () {
      inflight = false;
      failures++;
      schedule(Math.min(30000, 1000 * Math.pow(2, failures)));
    });
  }
  // A hidden tab polls every 10 s at most; showing it again polls at once.
  var timer = null;
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, document.hidden ? Math.max(ms, 10000) : ms);
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer !== null && root.dataset.done !== "1") schedule(0);
  });
  poll();
})();
