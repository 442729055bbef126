/* Inside Bitrix24 the app's frame has the height Bitrix24 gives it; ask for the page's own height
   (BX24.fitWindow) once the library is ready and whenever the content changes size. */
(function () {
  "use strict";
  if (!window.BX24 || window.parent === window) return;
  BX24.init(function () {
    var fit = function () { BX24.fitWindow(); };
    fit();
    if (window.ResizeObserver) new ResizeObserver(fit).observe(document.body);
  });
})();
