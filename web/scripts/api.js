// ComfyUI extensions also import `api` from "../../scripts/api.js" to listen to server events
// (api.addEventListener("executed", ...)). It is the canvas's own client, bound before any extension loads.

import { app } from "./app.js";

if (!app.api) throw new Error("scripts/api.js was imported before the canvas started its server client");

export const api = app.api;
