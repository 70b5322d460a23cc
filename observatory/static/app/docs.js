// Starts Swagger UI on /docs. A file, not an inline script: the Content-Security-Policy refuses
// inline code (observatory/api/security_headers.py). FastAPI's own options, plus no validator
// badge (it would load an image from another site).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
