// The module web extensions import `app` from ("../../scripts/app.js" relative to /extensions/<plugin>/),
// as in ComfyUI. The canvas (app/main.js) imports this same URL, so both share the one instance: that
// shared instance is the contract, which is why it lives at module level.

import { ExtensionApp } from "../app/extensions.js";

export const app = new ExtensionApp();
