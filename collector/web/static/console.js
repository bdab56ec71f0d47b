// Canh Gác console: live alert rows (server-sent events) and keyboard shortcuts.
// Plain JavaScript, no inline handlers (the pages forbid inline script).
"use strict";
(function () {
  function typing(ev) {
    var t = ev.target;
    return t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable);
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) {
      var span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      td.appendChild(span);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
    return td;
  }

  function alertRow(a) {
    var tr = document.createElement("tr");
    tr.className = "sev-" + a.severity + " new";
    tr.setAttribute("data-href", a.url);
    cell(tr, a.time);
    cell(tr, a.severity_name, "sev");
    var td = document.createElement("td");
    var link = document.createElement("a");
    link.href = a.url;
    link.textContent = a.rule;
    td.appendChild(link);
    tr.appendChild(td);
    cell(tr, a.host);
    cell(tr, a.system);
    cell(tr, a.summary);
    cell(tr, a.status);
    return tr;
  }

  function startLive(table) {
    var url = table.getAttribute("data-stream");
    if (!url || !window.EventSource) return;
    var body = table.tBodies[0];
    var source = new EventSource(url);
    source.addEventListener("alert", function (ev) {
      var a = JSON.parse(ev.data);
      if (document.querySelector('tr[data-href="' + a.url.replace(/"/g, "") + '"]')) return;
      body.insertBefore(alertRow(a), body.firstChild);
      var empty = document.getElementById("alerts-empty");
      if (empty) empty.hidden = true;
      while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
    });
    source.addEventListener("reload", function () {
      source.close();
      var note = document.getElementById("live-reload");
      if (note) note.hidden = false;
    });
  }

  var selected = -1;
  function select(rows, i) {
    if (!rows.length) return;
    if (selected >= 0 && rows[selected]) rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, i));
    var row = rows[selected];
    row.classList.add("selected");
    var link = row.querySelector("a");
    if (link) link.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("alert-list");
    if (table) startLive(table);
    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev)) return;
      if (ev.key === "/") {
        var first = document.getElementById("filter-first");
        if (first) { ev.preventDefault(); first.focus(); }
        return;
      }
      if (table && (ev.key === "j" || ev.key === "k")) {
        var rows = table.tBodies[0].rows;
        select(rows, selected + (ev.key === "j" ? 1 : -1));
        ev.preventDefault();
        return;
      }
      if (table && ev.key === "Enter" && selected >= 0 && document.activeElement === document.body) {
        var row = table.tBodies[0].rows[selected];
        if (row) window.location.href = row.getAttribute("data-href");
        return;
      }
      var button = document.querySelector('button[data-key="' + ev.key + '"]');
      if (button && ev.key.length === 1) { ev.preventDefault(); button.click(); }
    });
  });
})();
