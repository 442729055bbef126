/*
 * A small stand-in for Bitrix24's JS library (//api.bitrix24.com/api/v1/), served by the sandbox
 * at /bitrix24/js/bx24.js. Load it in the app page instead of the real one when running against
 * the sandbox.
 *
 * Where the context comes from:
 *  - inside the sandbox portal page (/bitrix24/portal/): asked from the parent with postMessage
 *    ({bx24: true, type: "init"}); the portal answers with {type: "context", context: {...}};
 *  - elsewhere: the app page may set `window.BX24_CONTEXT` to the fields it was POSTed (AUTH_ID,
 *    REFRESH_ID, AUTH_EXPIRES, member_id, PLACEMENT, PLACEMENT_OPTIONS, DOMAIN, LANG) before
 *    loading this script.
 *
 * Covered: init, installFinish, getAuth, refreshAuth (returns the current auth), isAdmin,
 * getDomain, getLang, placement.info, resizeWindow, fitWindow, openApplication, closeApplication,
 * callMethod (through the portal page only: the portal answers on its own origin).
 */
(function () {
  var ctx = null, waiting = [], pending = {}, seq = 0;
  var framed = window.parent && window.parent !== window;
  var script = document.currentScript;
  var base = script ? script.src.replace(/\/bitrix24\/js\/bx24\.js.*$/, '') : '';

  function post(type, data, cb) {
    var id = ++seq;
    if (cb) pending[id] = cb;
    window.parent.postMessage(Object.assign({bx24: true, type: type, id: id}, data || {}), '*');
  }
  function setContext(c) {
    ctx = c;
    var run = waiting; waiting = [];
    run.forEach(function (cb) { try { cb(); } catch (e) { console.error(e); } });
  }
  function fromForm(f) {
    var options = {};
    try { options = JSON.parse(f.PLACEMENT_OPTIONS || '{}'); } catch (e) { /* keep {} */ }
    return {
      auth: {access_token: f.AUTH_ID, refresh_token: f.REFRESH_ID, expires_in: +(f.AUTH_EXPIRES || 3600),
             domain: f.DOMAIN, member_id: f.member_id},
      placement: f.PLACEMENT || 'DEFAULT', options: options, isAdmin: !!f.IS_ADMIN,
      lang: f.LANG || 'en', domain: f.DOMAIN, clientEndpoint: base + '/bitrix24/rest/', standalone: true
    };
  }
  window.addEventListener('message', function (e) {
    var m = e.data || {};
    if (!m.bx24 || e.source !== window.parent) return;
    if (m.type === 'context') setContext(m.context);
    else if (m.type === 'reply' && pending[m.id]) { var cb = pending[m.id]; delete pending[m.id]; cb(m.result); }
  });

  function Result(body) { this.answer = body || {}; }
  Result.prototype.data = function () { return this.answer.result; };
  Result.prototype.error = function () {
    return this.answer.error ? {status: 400, ex: {error: this.answer.error, error_description: this.answer.error_description}} : false;
  };
  Result.prototype.total = function () { return this.answer.total; };
  Result.prototype.more = function () { return this.answer.next !== undefined; };
  Result.prototype.time = function () { return this.answer.time; };

  var viaPortal = function () { return framed && ctx && !ctx.standalone; };
  var BX24 = {
    init: function (cb) { if (ctx) { if (cb) cb(); } else waiting.push(cb || function () {}); },
    installFinish: function () {
      if (viaPortal()) { post('installFinish'); return; }
      // Outside the portal: tell the sandbox directly (a "simple" request, no CORS preflight).
      fetch(base + '/_sandbox/bitrix24/install-finish', {method: 'POST', mode: 'no-cors',
        body: JSON.stringify({auth: ctx && ctx.auth.access_token})});
    },
    getAuth: function () { return ctx && ctx.auth && ctx.auth.access_token ? Object.assign({}, ctx.auth) : false; },
    refreshAuth: function (cb) { if (cb) cb(BX24.getAuth()); },
    isAdmin: function () { return !!(ctx && ctx.isAdmin); },
    getDomain: function () { return ctx ? ctx.domain : ''; },
    getLang: function () { return ctx ? ctx.lang : 'en'; },
    placement: {
      info: function () { return ctx ? {placement: ctx.placement, options: ctx.options || {}} : {placement: 'DEFAULT', options: {}}; }
    },
    resizeWindow: function (width, height, cb) {
      if (viaPortal()) post('resizeWindow', {width: width, height: height}, function () { if (cb) cb(); });
    },
    fitWindow: function (cb) { BX24.resizeWindow('100%', document.documentElement.scrollHeight, cb); },
    openApplication: function (params, cb) { if (viaPortal()) post('openApplication', {params: params || {}}); },
    closeApplication: function () { if (viaPortal()) post('closeApplication'); },
    callMethod: function (method, params, cb) {
      if (!viaPortal()) { if (cb) cb(new Result({error: 'NO_PORTAL', error_description: 'callMethod needs the sandbox portal page'})); return; }
      post('callMethod', {method: method, params: params || {}}, function (body) { if (cb) cb(new Result(body)); });
    }
  };
  window.BX24 = BX24;

  if (window.BX24_CONTEXT) setContext(fromForm(window.BX24_CONTEXT));
  else if (framed) post('init');
})();
