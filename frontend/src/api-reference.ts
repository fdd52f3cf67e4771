// The API reference at /schema (api/web/reference.py): Swagger UI, vendored from the pinned
// swagger-ui-dist, on the OpenAPI document the service serves. Vite gives its files hashed
// names under assets/ like the page's; the service finds them in dist/.vite/manifest.json.
// A module of its own rather than an inline script: the reference keeps a strict
// Content-Security-Policy.

import "swagger-ui-dist/swagger-ui.css";
import swaggerUiBundle from "swagger-ui-dist/swagger-ui-bundle.js?url";
import swaggerUiLicence from "swagger-ui-dist/LICENSE?url";
import swaggerUiNotice from "swagger-ui-dist/NOTICE?url&no-inline";
import bundledLicences from "swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt?url";

/** What this page asks of the global that Swagger UI's bundle (a UMD script) defines. */
declare global {
  interface Window {
    SwaggerUIBundle?: (options: Record<string, unknown>) => unknown;
  }
}

function link(rel: string, href: string): void {
  const element = document.createElement("link");
  element.rel = rel;
  element.href = href;
  document.head.append(element);
}

// Swagger UI is Apache-2.0: its licence, notice and its bundled dependencies' licences go with it.
for (const href of [swaggerUiLicence, swaggerUiNotice, bundledLicences]) link("license", href);

const root = document.getElementById("swagger-ui")!;
const script = document.createElement("script");
script.src = swaggerUiBundle;
script.addEventListener("load", () =>
  window.SwaggerUIBundle!({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    displayRequestDuration: true,
    // A key typed into "Authorize" stays in this tab, never in localStorage.
    persistAuthorization: false,
    // Never ask validator.swagger.io about the document.
    validatorUrl: null,
  }),
);
document.head.append(script);
