// Starts Swagger UI on /docs (cityhub/api/docs.py) from the vendored swagger-ui-dist; kept out of the page so the
// content security policy can forbid inline scripts. Loaded in the head: with no theme chosen (no data-theme on
// <html>, as the web UI's 跟随系统) the page takes Swagger UI's dark stylesheet (html.dark-mode) while the system is
// dark, before the first paint and whenever the system's setting changes; a chosen theme is the server's.
(function () {
  var html = document.documentElement;
  if (!html.hasAttribute("data-theme") && window.matchMedia) {
    var dark = window.matchMedia("(prefers-color-scheme: dark)");
    var follow = function () { html.classList.toggle("dark-mode", dark.matches); };
    follow();
    if (dark.addEventListener) dark.addEventListener("change", follow);
  }
  function start() {
    var root = document.getElementById("swagger-ui");
    if (!root || typeof window.SwaggerUIBundle !== "function") return;
    window.SwaggerUIBundle({
      url: root.getAttribute("data-openapi-url"),
      dom_id: "#swagger-ui",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      validatorUrl: null, // no badge fetched from validator.swagger.io
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
