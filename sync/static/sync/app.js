/* The buttons of the app's pages: send the click, show progress, refresh what changed.

   Buttons carry data-action="push" (data-scope one|selected|all, data-ids) / "pull" / "retry"
   (data-entry). The panel [data-actions] holds the endpoints and the progress display. Calls
   carry the frame token in X-Frame-Token (the frame has no cookies); each refreshed page hands
   out a fresh token, which is kept in <meta name="frame-token">. */
(function () {
  "use strict";
  var panel = document.querySelector("[data-actions]");
  if (!panel) return;
  var POLL_MS = 1000;
  var bar = panel.querySelector("[data-test=progress-bar]");
  var text = panel.querySelector("[data-test=progress-text]");
  var errors = panel.querySelector("[data-test=progress-errors]");
  var box = panel.querySelector("[data-test=progress]");
  var message = panel.querySelector("[data-test=action-message]");

  // Messages in the page's language (the server puts the translations in #app-i18n).
  var catalog = {};
  try { catalog = JSON.parse((document.getElementById("app-i18n") || {}).textContent || "{}"); } catch (e) { catalog = {}; }
  function t(text, vars) {
    var out = catalog[text] || text;
    Object.keys(vars || {}).forEach(function (k) { out = out.split("{" + k + "}").join(String(vars[k])); });
    return out;
  }

  function token() {
    var meta = document.querySelector('meta[name="frame-token"]');
    return meta ? meta.content : "";
  }

  function call(method, url, body) {
    return fetch(url, {
      method: method,
      headers: { "X-Frame-Token": token(), "Content-Type": "application/json", Accept: "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var why = data.error || (response.status === 403 ? t("Your sign-in has ended. Reopen the app from Bitrix24.") : t("The server answered {status}. Try again.", {status: response.status}));
          throw new Error(why);
        }
        return data;
      });
    });
  }

  function say(words, isError) {
    panel.hidden = false;
    message.textContent = words;
    message.classList.toggle("is-error", !!isError);
  }

  function buttons() { return document.querySelectorAll("[data-action]"); }
  var busy = false;
  function setBusy(value) {
    busy = value;
    buttons().forEach(function (b) { b.disabled = busy || (b.dataset.scope === "selected" && selected().length === 0); });
  }

  function selected() {
    return Array.prototype.map.call(document.querySelectorAll("[data-row-select]:checked"), function (c) { return c.value; });
  }

  function updateSelection() {
    var count = document.querySelector("[data-test=selected-count]");
    if (count) count.textContent = selected().length;
    var rows = document.querySelectorAll("[data-row-select]").length;
    document.querySelectorAll("[data-select-all]").forEach(function (all) {
      all.checked = rows > 0 && selected().length === rows;
      all.indeterminate = selected().length > 0 && selected().length < rows;
    });
    setBusy(busy);
  }

  function refresh() {
    // Re-read this page and swap in the parts marked data-refresh (rows, summary, log).
    return fetch(window.location.href, { headers: { "X-Frame-Token": token() } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector('meta[name="frame-token"]');
        var meta = document.querySelector('meta[name="frame-token"]');
        if (fresh && meta) meta.content = fresh.content;
        document.querySelectorAll("[data-refresh]").forEach(function (old) {
          var next = old.id && doc.getElementById(old.id);
          if (next) old.replaceWith(document.importNode(next, true));
        });
        bindSelection();
      })
      .catch(function () { /* the progress summary stays; a reload shows the rest */ });
  }

  function show(p) {
    box.hidden = false;
    bar.max = Math.max(1, p.total);
    bar.value = p.done + p.failed;
    text.textContent = t("{done} of {total} done", {done: p.done + p.failed, total: p.total}) + (p.failed ? t(", {failed} failed", {failed: p.failed}) : "");
    errors.textContent = "";
    (p.errors || []).concat(p.retrying || []).forEach(function (e) {
      var li = document.createElement("li");
      li.textContent = (e.invoice ? t("Invoice {number}: ", {number: e.invoice}) : "") + (e.message || t("failed"));
      errors.appendChild(li);
    });
  }

  function track(jobs) {
    panel.dataset.jobs = jobs.join(",");
    var url = panel.dataset.progressUrl + "?ids=" + encodeURIComponent(jobs.join(","));
    var waiting = false;
    function poll() {
      call("GET", url).then(function (p) {
        show(p);
        var retrying = p.retrying || [];
        if (p.pending > 0 && retrying.length >= p.pending) {
          // Everything left waits for a retry (Xero or Bitrix24 failed): say so and when, and free
          // the other buttons; keep watching, more slowly, to report the end.
          var next = retrying.map(function (r) { return r.next_attempt_at; }).sort()[0];
          var at = next ? new Date(next).toLocaleTimeString() : "";
          say(t("Not done yet: {why}", {why: retrying[0].message || t("the other system did not answer.")}) + (at ? " " + t("Trying again at {time}.", {time: at}) : ""), true);
          if (!waiting) { waiting = true; setBusy(false); }
          window.setTimeout(poll, POLL_MS * 5);
          return;
        }
        if (p.pending > 0) { window.setTimeout(poll, POLL_MS); return; }
        var changes = p.changes || [];
        var finished = p.failed ? (p.failed > 1 ? t("Finished with {failed} failures — see below and the Sync log.", {failed: p.failed}) : t("Finished with 1 failure — see below and the Sync log.")) : t("Finished.");
        if (changes.length) finished = t("Updated from Xero: {changes}.", {changes: changes.join(", ")}) + (p.failed ? " " + finished : "");
        say(finished, p.failed > 0);
        if (!waiting) setBusy(false);
        refresh();
      }).catch(function (err) { say(err.message, true); setBusy(false); });
    }
    poll();
  }

  function bodyFor(button) {
    if (button.dataset.action === "retry") return { entry: button.dataset.entry };
    if (button.dataset.action === "pull") return {};
    var kind = panel.dataset.kind || "";  // which kind of Bitrix24 invoice: 31 new, 5 old
    if (button.dataset.scope === "all") return { all_filtered: true, from: panel.dataset.filterFrom || "", to: panel.dataset.filterTo || "", kind: kind };
    if (button.dataset.scope === "selected") return { ids: selected(), kind: kind };
    return { ids: (button.dataset.ids || "").split(","), kind: kind };
  }

  function urlFor(button) {
    // data-url: a one-off action (accept Xero's version, run a reconciliation) posted as is.
    if (button.dataset.url) return button.dataset.url;
    return { push: panel.dataset.pushUrl, pull: panel.dataset.pullUrl, retry: panel.dataset.retryUrl }[button.dataset.action];
  }

  function copy(button) {
    // data-action="copy" data-copy="<id of an input>": put its value on the clipboard.
    var field = document.getElementById(button.dataset.copy);
    if (!field) return;
    var done = function () { say(t("Copied: {value}", {value: field.value})); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); document.execCommand("copy"); done(); });
    } else { field.select(); document.execCommand("copy"); done(); }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button || button.disabled) return;
    if (button.dataset.action === "copy") { copy(button); return; }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    if (button.dataset.scope === "all" && !window.confirm(t("Send all {total} invoices to Xero?", {total: button.dataset.total}))) return;
    setBusy(true);
    errors.textContent = "";
    box.hidden = true;
    say(button.dataset.busy || (button.dataset.action === "pull" ? t("Asking Xero for changes…") : t("Sending…")));
    call("POST", urlFor(button), bodyFor(button))
      .then(function (answer) {
        if (!answer.jobs || !answer.jobs.length) {
          say(answer.message || t("Done."));
          if (answer.reload) { window.location.reload(); return; }
          setBusy(false);
          refresh();
          return;
        }
        say(answer.count === 1 ? t("Queued; working on it…") : t("Queued {count} invoices; working on them…", {count: answer.count}));
        track(answer.jobs);
      })
      .catch(function (err) { say(err.message, true); setBusy(false); });
  });

  function bindSelection() {
    // Two "select all" boxes: the table header's, and the toolbar's for narrow screens (where the
    // table's header is hidden and rows are cards). They mirror each other.
    var alls = document.querySelectorAll("[data-select-all]");
    alls.forEach(function (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("[data-row-select]").forEach(function (c) { c.checked = all.checked; });
        alls.forEach(function (other) { other.checked = all.checked; });
        updateSelection();
      });
    });
    document.querySelectorAll("[data-row-select]").forEach(function (c) { c.addEventListener("change", updateSelection); });
    updateSelection();
  }
  bindSelection();
})();
