/* Inside Bitrix24 the app's frame has the height Bitrix24 gives it; ask for the content's own height
   once the library is ready and whenever the content changes size, both ways.

   BX24.fitWindow() measures document.documentElement.scrollHeight, which is never less than the
   frame's current height: after a long page the frame would never shrink again. So the height is the
   body's own box (the body is as tall as its content, not the viewport) and goes to
   BX24.resizeWindow, which sets it exactly. */
(function () {
  "use strict";
  if (!window.BX24 || window.parent === window) return;
  var last = 0;
  function contentHeight() {
    var body = document.body, style = window.getComputedStyle(body);
    return Math.ceil(body.getBoundingClientRect().height + parseFloat(style.marginTop) + parseFloat(style.marginBottom));
  }
  BX24.init(function () {
    var fit = function () {
      var height = contentHeight();
      if (height === last) return;
      last = height;
      BX24.resizeWindow(document.documentElement.clientWidth, height);
    };
    fit();
    window.appFit = fit;  // pages call it after showing or hiding content without a resize
    if (window.ResizeObserver) new ResizeObserver(fit).observe(document.body);
    window.addEventListener("load", fit);
  });
})();
