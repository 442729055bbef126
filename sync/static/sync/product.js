// Add New Product: Xero code suggested from the name, sales-account typeahead, submit feedback.
(function () {
  "use strict";

  var form = document.querySelector('[data-test="product-form"]');
  if (!form) { return; }

  var DEBOUNCE_MS = 150;
  var CODE_MAX = 30;
  // Messages in the page's language (the server puts the translations in #app-i18n, as for app.js).
  var catalog = {};
  try { catalog = JSON.parse((document.getElementById("app-i18n") || {}).textContent || "{}"); } catch (e) { catalog = {}; }
  function t(text, vars) {
    var out = catalog[text] || text;
    Object.keys(vars || {}).forEach(function (k) { out = out.split("{" + k + "}").join(String(vars[k])); });
    return out;
  }

  // --- Xero item code from the name (until the user types a code of their own) -----------------
  var nameInput = form.querySelector('[data-test="field-name"]');
  var codeInput = form.querySelector('[data-test="field-code"]');
  var codeTouched = Boolean(codeInput && codeInput.value);

  function codeFromName(name) {
    return name
      .normalize("NFKD").replace(/[\u0300-\u036f]/g, "")  // é -> e
      .toUpperCase()
      .replace(/[^A-Z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, CODE_MAX)
      .replace(/-+$/, "");
  }

  if (nameInput && codeInput) {
    codeInput.addEventListener("input", function () { codeTouched = codeInput.value !== ""; });
    nameInput.addEventListener("input", function () {
      if (!codeTouched) { codeInput.value = codeFromName(nameInput.value); }
    });
  }

  // --- sales account typeahead -------------------------------------------------------------------
  var account = form.querySelector('[data-test="field-account"]');
  var list = form.querySelector('[data-test="account-suggestions"]');
  var chosen = form.querySelector('[data-test="account-chosen"]');
  var suggestUrl = form.getAttribute("data-suggest-url");
  var token = form.getAttribute("data-frame-token");
  var timer = null;
  var inFlight = null;
  var items = [];
  var active = -1;
  var lastQuery = null;

  function close() {
    list.hidden = true;
    account.setAttribute("aria-expanded", "false");
    account.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    var options = list.querySelectorAll('[role="option"]');
    if (!options.length) { return; }
    active = (index + options.length) % options.length;
    options.forEach(function (option, i) { option.setAttribute("aria-selected", i === active ? "true" : "false"); });
    account.setAttribute("aria-activedescendant", options[active].id);
    options[active].scrollIntoView({ block: "nearest" });
  }

  function choose(index) {
    var item = items[index];
    if (!item) { return; }
    // A search still waiting or in flight would reopen the list over the form after the choice.
    clearTimeout(timer);
    if (inFlight) { inFlight.abort(); inFlight = null; }
    account.value = item.code;
    if (chosen) { chosen.textContent = item.code + " — " + item.name; }
    lastQuery = item.code;
    close();
  }

  function render(results, message) {
    // A late answer must not drop the row the user has moved to with the arrow keys.
    var keep = active >= 0 && items[active] ? items[active].code : null;
    items = results;
    list.textContent = "";
    if (!results.length) {
      var empty = document.createElement("li");
      empty.className = "empty";
      empty.setAttribute("data-test", "account-suggestions-empty");
      empty.textContent = message || t("No matching Xero account.");
      list.appendChild(empty);
    }
    results.forEach(function (item, i) {
      var li = document.createElement("li");
      li.id = "account-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.setAttribute("data-test", "account-suggestion");
      li.setAttribute("data-code", item.code);
      var code = document.createElement("span"); code.className = "code"; code.textContent = item.code;
      var name = document.createElement("span"); name.className = "name"; name.textContent = item.name;
      li.appendChild(code); li.appendChild(name);
      if (item.type) { var type = document.createElement("span"); type.className = "type"; type.textContent = item.type; li.appendChild(type); }
      // mousedown, not click: the input's blur would close the list before a click lands.
      li.addEventListener("mousedown", function (event) { event.preventDefault(); choose(i); });
      list.appendChild(li);
    });
    list.hidden = false;
    account.setAttribute("aria-expanded", "true");
    active = -1;
    var kept = keep === null ? -1 : results.findIndex(function (item) { return item.code === keep; });
    if (kept >= 0) { highlight(kept); }
  }

  function fetchSuggestions(query) {
    if (inFlight) { inFlight.abort(); }
    inFlight = window.AbortController ? new AbortController() : null;
    var url = suggestUrl + (suggestUrl.indexOf("?") >= 0 ? "&" : "?") + "q=" + encodeURIComponent(query);
    fetch(url, { headers: { "X-Frame-Token": token, "Accept": "application/json" }, signal: inFlight && inFlight.signal })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) { throw new Error(body.error || body.message || ("HTTP " + response.status)); }
          return body;
        });
      })
      .then(function (body) {
        var results = Array.isArray(body) ? body : (body.results || body.accounts || body.suggestions || []);
        if (document.activeElement === account) { render(results); }
      })
      .catch(function (error) {
        if (error.name === "AbortError") { return; }
        render([], t("Could not load Xero accounts: {error}", { error: error.message }));
      });
  }

  if (account && list && suggestUrl) {
    account.addEventListener("input", function () {
      if (chosen) { chosen.textContent = t("Type a code or a name, e.g. 200 or Sales."); }
      clearTimeout(timer);
      var query = account.value.trim();
      timer = setTimeout(function () {
        if (query === lastQuery && !list.hidden) { return; }
        lastQuery = query;
        fetchSuggestions(query);
      }, DEBOUNCE_MS);
    });
    account.addEventListener("focus", function () {
      if (!account.value) { lastQuery = ""; fetchSuggestions(""); }
    });
    account.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) { fetchSuggestions(account.value.trim()); return; }
        highlight(active + (event.key === "ArrowDown" ? 1 : -1));
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();  // pick the suggestion, don't submit the form
        choose(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      } else if (event.key === "Tab" && !list.hidden && active >= 0) {
        choose(active);
      }
    });
    account.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  // --- submit feedback: busy button, no second submit ---------------------------------------------
  var submit = form.querySelector('[data-test="submit"]');
  var submitting = false;
  form.addEventListener("submit", function (event) {
    if (submitting) { event.preventDefault(); return; }
    submitting = true;
    if (submit) {
      submit.disabled = true;
      submit.classList.add("is-busy");
      submit.setAttribute("aria-busy", "true");
      var label = submit.querySelector(".label");
      if (label) { label.textContent = t("Creating in Xero and Bitrix24…"); }
    }
  });
  // Back/forward cache restores the page as it was left: make the button usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted || !submit) { return; }
    submitting = false;
    submit.disabled = false;
    submit.classList.remove("is-busy");
    submit.removeAttribute("aria-busy");
    var label = submit.querySelector(".label");
    if (label) { label.textContent = t("Create product"); }
  });
})();
