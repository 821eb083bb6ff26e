// The jobs page: polls /ui/api/jobs/ every 2 s and redraws the table.
"use strict";
(function () {
  var table = document.getElementById("jobs");
  var tbody = table.querySelector("tbody");
  var status = table.dataset.status, cursor = table.dataset.cursor;
  var updated = document.getElementById("jobs-updated");
  var older = document.getElementById("older");
  var select = document.getElementById("status");
  var timer = null;

  select.addEventListener("change", function () {
    status = select.value;
    cursor = "";
    var q = status ? "?status=" + encodeURIComponent(status) : "";
    history.replaceState(null, "", "/ui/jobs/" + q);
    refresh();
  });

  function row(job, now) {
    var rel = job.plugin_release || {};
    var link = ui.el("a", { href: "/ui/jobs/" + encodeURIComponent(job.id) + "/", text: job.id.slice(0, 8), title: job.id });
    var st = ui.el("td", null, [ui.statusBadge(job.status)]);
    var q = job.meta && job.meta.queue;
    if (job.status === "PENDING" && q && q.position) st.append(" ", ui.el("span", { class: "muted queue", text: "#" + q.position + " in queue" }));
    var b = ui.bar("Progress of job " + job.id);
    ui.setBar(b, ui.overall(job), null, job.status === "FAILED");
    return ui.el("tr", { "data-id": job.id, "data-status": job.status }, [
      ui.el("td", null, [link]), st,
      ui.el("td", { "data-label": "Plugin", text: (rel.plugin || "?") + "@" + (rel.version || "?") }),
      ui.el("td", { "data-label": "Action", text: job.action }),
      ui.el("td", { "data-label": "Agent", text: (job.agent && job.agent.name) || "" }),
      ui.el("td", { "data-label": "Created", text: ui.fmtTime(job.created), title: job.created }),
      ui.el("td", { "data-label": "Duration", class: "num", text: ui.fmtDuration(ui.duration(job, now)) }),
      ui.el("td", { class: "pct" }, [b])
    ]);
  }

  var inflight = false, again = false;
  function refresh() {
    clearTimeout(timer);
    if (inflight) { again = true; return; } // refreshed once the answer in flight is in
    inflight = true;
    var q = [];
    if (status) q.push("status=" + encodeURIComponent(status));
    if (cursor) q.push("cursor=" + encodeURIComponent(cursor));
    ui.getJSON("/ui/api/jobs/" + (q.length ? "?" + q.join("&") : "")).then(function (data) {
      var now = Date.parse(data.now) || Date.now();
      var rows = data.jobs.map(function (j) { return row(j, now); });
      if (!rows.length) rows = [ui.el("tr", null, [ui.el("td", { colspan: "8", text: status ? "No " + status + " jobs." : "No jobs yet." })])];
      tbody.replaceChildren.apply(tbody, rows);
      updated.textContent = "Updated " + new Date().toLocaleTimeString();
      if (data.next) {
        var nq = (status ? "status=" + encodeURIComponent(status) + "&" : "") + "cursor=" + encodeURIComponent(data.next);
        older.href = "/ui/jobs/?" + nq;
        older.hidden = false;
      } else older.hidden = true;
    }).catch(function (e) {
      updated.textContent = "Update failed (" + e.message + "); retrying";
    }).finally(function () {
      inflight = false;
      if (again) { again = false; refresh(); return; }
      timer = setTimeout(refresh, document.hidden ? 10000 : 2000); // a hidden tab polls less
    });
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  refresh();
})();
