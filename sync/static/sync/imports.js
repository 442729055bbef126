// Import page: start a run without leaving the page, then follow its progress until it ends.
// Without JavaScript the forms post normally and the page shows the run's state on reload.
(function () {
  "use strict";
  var tokenInput = document.querySelector('input[name="ft"]');
  var token = tokenInput ? tokenInput.value : "";
  var errorBox = document.getElementById("import-js-error");
  var runs = document.getElementById("import-runs");
  var template = document.getElementById("import-progress-template");
  var POLL_MS = 1000;
  // Messages in the page's language (the server puts the translations in #app-i18n, as for app.js).
  var catalog = {};
  try { catalog = JSON.parse((document.getElementById("app-i18n") || {}).textContent || "{}"); } catch (e) { catalog = {}; }
  function t(text, vars) {
    var out = catalog[text] || text;
    Object.keys(vars || {}).forEach(function (k) { out = out.split("{" + k + "}").join(String(vars[k])); });
    return out;
  }
  var LABELS = { pending: t("Waiting to start…"), running: t("Importing…"), done: t("Done"), failed: t("Failed") };
  var BUTTONS = { import_contacts: "import-contacts", import_items: "import-items" };
  var IDLE_TEXT = { "import-contacts": t("Import contacts as companies"), "import-items": t("Import items as products") };

  function q(root, name) { return root.querySelector('[data-test="' + name + '"]'); }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function setToken(fresh) {
    if (!fresh) { return; }
    token = fresh;
    document.querySelectorAll('input[name="ft"]').forEach(function (input) { input.value = fresh; });
  }

  function buttonFor(kind) { return document.querySelector('[data-test="' + BUTTONS[kind] + '"]'); }

  function setBusy(button, busy, text) {
    if (!button) { return; }
    button.disabled = busy;
    button.classList.toggle("is-busy", busy);
    button.textContent = text || (busy ? t("Importing…") : IDLE_TEXT[button.dataset.test]);
  }

  function render(block, p) {
    block.dataset.status = p.status;
    var badge = q(block, "import-status");
    badge.textContent = LABELS[p.status] || p.status;
    badge.className = "badge " + (p.status === "done" ? "badge-ok" : p.status === "failed" ? "badge-danger" : "badge-progress");
    var bar = q(block, "import-progress-bar");
    bar.max = Math.max(p.total || 0, p.processed || 0, 1);
    bar.value = p.processed || 0;
    q(block, "import-progress-text").textContent = t("{processed} of {total} processed", { processed: p.processed || 0, total: p.total || 0 });
    ["created", "updated", "skipped", "failed"].forEach(function (name) {
      q(block, "import-" + name).textContent = p[name] || 0;
    });
    var list = q(block, "import-errors");
    list.innerHTML = "";
    (p.errors || []).forEach(function (message) {
      var li = document.createElement("li");
      li.textContent = message;
      list.appendChild(li);
    });
    list.hidden = !(p.errors && p.errors.length);
  }

  function follow(block) {
    var url = block.dataset.progressUrl;
    if (!url) { return; }
    function tick() {
      fetch(url, { headers: { "X-Frame-Token": token, Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (answer) {
          if (!answer.ok) { throw new Error(answer.body.error || t("Could not read the progress.")); }
          setToken(answer.body.ft);
          render(block, answer.body);
          if (answer.body.status === "done" || answer.body.status === "failed") {
            setBusy(buttonFor(block.dataset.kind), false);
            return;
          }
          window.setTimeout(tick, POLL_MS);
        })
        .catch(function (error) {
          showError(t("{message} Retrying…", { message: error.message }));
          window.setTimeout(tick, POLL_MS * 3);
        });
    }
    tick();
  }

  function newBlock(job) {
    var block = template.content.firstElementChild.cloneNode(true);
    block.dataset.jobId = job.job;
    block.dataset.kind = job.kind;
    block.dataset.progressUrl = job.progress_url;
    block.querySelector(".im-head strong").textContent =
      job.kind === "import_items" ? t("Import Xero items") : t("Import Xero contacts");
    var empty = document.getElementById("import-empty");
    if (empty) { empty.remove(); }
    var existing = runs.querySelector('[data-test="import-progress"][data-job-id="' + job.job + '"]');
    if (existing) { return existing; }
    runs.querySelector("h2").insertAdjacentElement("afterend", block);
    render(block, { status: "pending", processed: 0, total: 0 });
    return block;
  }

  document.querySelectorAll("[data-import-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector('button[type="submit"]');
      showError("");
      setBusy(button, true, t("Starting…"));
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Frame-Token": token, Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (answer) {
          if (!answer.ok) { throw new Error(answer.body.error || t("The import could not start.")); }
          setBusy(button, true);
          follow(newBlock(answer.body));
        })
        .catch(function (error) {
          setBusy(button, false);
          showError(error.message || t("The import could not start. Check your connection and try again."));
        });
    });
  });

  document.querySelectorAll('[data-test="import-progress"][data-progress-url]').forEach(function (block) {
    if (block.dataset.status === "pending" || block.dataset.status === "running") { follow(block); }
  });
})();
