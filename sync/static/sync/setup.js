// Setup page: feedback on save, the payment account only when payments are recorded, and a
// warning before leaving with unsaved changes. Works without it (plain form POST).
(function () {
  "use strict";
  var form = document.getElementById("setup-form");
  if (!form) { return; }
  var save = document.getElementById("setup-save");
  var status = document.getElementById("setup-status");
  var record = document.getElementById("record_payment_on_paid");
  var account = document.getElementById("payment_account_code");
  var dirty = false;

  function syncPaymentAccount() {
    if (!record || !account) { return; }
    account.required = record.checked;
    account.closest(".st-field").style.opacity = record.checked ? "1" : ".6";
  }
  if (record) { record.addEventListener("change", syncPaymentAccount); syncPaymentAccount(); }

  // Voided / Deleted cannot be undone in Xero: show the warning beside a stage that asks for one.
  form.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches || !select.matches("select[data-test=stage-select]")) { return; }
    var warn = select.parentNode.querySelector("[data-test=stage-irreversible]");
    var chosen = select.options[select.selectedIndex];
    if (warn) { warn.hidden = !(chosen && chosen.getAttribute("data-irreversible")); }
  });
  form.addEventListener("change", function () {
    dirty = true;
    if (status) { status.textContent = status.dataset.unsaved; }
  });
  form.addEventListener("submit", function (event) {
    if (record && account && record.checked && !account.value) {
      event.preventDefault();
      account.focus();
      if (status) { status.textContent = status.dataset.needBank; }
      return;
    }
    dirty = false;
    save.disabled = true;
    save.textContent = save.dataset.saving;
    if (status) { status.textContent = status.dataset.saving; }
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
  // After a refused save, bring the summary into view for screen readers and small screens.
  var problems = document.getElementById("setup-problems");
  if (problems) { problems.focus(); }
  // A page restored from the back/forward cache must not keep the button disabled.
  window.addEventListener("pageshow", function () { save.disabled = false; save.textContent = save.dataset.label; });
})();
