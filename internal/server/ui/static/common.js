// Shared helpers of the dashboard's pages. Values are put in the page
// with textContent and DOM properties only, never as HTML.
"use strict";
var ui = (function () {
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (k === "text") e.textContent = attrs[k];
        else if (k === "class") e.className = attrs[k];
        else e.setAttribute(k, attrs[k]);
      }
    }
    (children || []).forEach(function (c) { if (c != null) e.append(c); });
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function statusBadge(status) {
    return el("span", { class: "status", "data-status": status, text: status });
  }
  function fmtDuration(sec) {
    if (sec == null || !isFinite(sec) || sec < 0) return "–";
    sec = Math.round(sec);
    var h = Math.floor(sec / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }
  function duration(job, now) {
    if (!job.started) return null;
    var end = job.completed ? Date.parse(job.completed) : now;
    return (end - Date.parse(job.started)) / 1000;
  }
  function fmtTime(iso) {
    if (!iso) return "–";
    var d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.toLocaleString();
  }
  function overall(job) {
    var p = job.progress_record && job.progress_record.current_progress;
    var v = p && typeof p.overall === "number" ? p.overall : 0;
    return Math.max(0, Math.min(100, v));
  }
  // setBar fills a .bar element: width, text and aria-valuenow.
  function setBar(bar, pct, text, failed) {
    pct = Math.max(0, Math.min(100, Number(pct) || 0));
    bar.querySelector(".fill").style.width = pct + "%";
    bar.querySelector(".label").textContent = text != null ? text : (Math.round(pct * 10) / 10) + "%";
    bar.setAttribute("aria-valuenow", String(pct));
    bar.classList.toggle("done", pct >= 100);
    bar.classList.toggle("failed", !!failed);
  }
  function bar(label) {
    return el("div", { class: "bar", role: "progressbar", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" },
      [el("span", { class: "fill" }), el("span", { class: "label", text: "0%" })]);
  }
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }
  // getJSON fetches a /ui/api/ route; a signed-out answer goes to the
  // sign-in page.
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
      if (r.status === 401) {
        location.href = "/ui/signin/?next=" + encodeURIComponent(location.pathname + location.search);
        throw new Error("signed out");
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }
  function pretty(v) {
    if (v == null) return "–";
    return JSON.stringify(v, null, 2);
  }
  // Times the server wrote (<time datetime>, in UTC) are shown in local time.
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    t.title = t.dateTime;
    t.textContent = fmtTime(t.dateTime);
  });
  return { el: el, svg: svg, statusBadge: statusBadge, fmtDuration: fmtDuration, duration: duration, fmtTime: fmtTime,
    overall: overall, setBar: setBar, bar: bar, csrf: csrf, getJSON: getJSON, pretty: pretty };
})();
