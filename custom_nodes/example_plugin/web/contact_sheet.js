// Example web extension: gives Contact Sheet nodes a colour and a hint under their title.
// Loaded by the canvas from GET /api/extensions; see docs/plugins.md ("Web extensions").
import { app } from "../../scripts/app.js";

app.registerExtension({
  name: "example_plugin.contact_sheet",
  nodeCreated(node) {
    if (node.comfyClass !== "ContactSheet") return;
    node.color = "#2f4f4f";
    node.bgcolor = "#3c6464";
    node.properties = { ...(node.properties || {}), hint: "one image per cell, row by row" };
  },
});
