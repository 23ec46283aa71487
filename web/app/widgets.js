// Widgets for literal inputs, made from an input's definition: numbers honour min/max/step, multi-line
// strings get a text area, combos list their choices, booleans toggle. Nothing depends on the node type.

import {
  BooleanWidget,
  ButtonWidget,
  ComboWidget,
  NumberWidget,
  TextWidget,
} from "../vendor/litegraph/litegraph.es.js";
import { FilteredComboWidget } from "./combo-filter.js";
import { decimalsFor } from "./node-defs.js";
import { MultilineTextWidget } from "./text-widget.js";

const CONTROL_WIDGET_NAME = "control_after_generate";
const CONTROL_MODES = Object.freeze(["fixed", "increment", "decrement", "randomize"]);
// Randomized seeds stay below 2**50 as in ComfyUI, so they survive JSON numbers in every client.
const RANDOM_CEILING = 2 ** 50;

/** Rounds a number to its widget's step (counted from min) and precision, and clamps it to min/max. */
export function snapNumber(value, { min, max, round, precision = 0 }) {
  let number = Number(value);
  if (!Number.isFinite(number)) number = min ?? 0;
  if (round) {
    const origin = min ?? 0;
    number = origin + Math.round((number - origin) / round) * round;
  }
  number = Number(number.toFixed(precision));
  if (min != null && number < min) number = min;
  if (max != null && number > max) number = max;
  return number;
}

class SnappingNumberWidget extends NumberWidget {
  setValue(value, options) {
    super.setValue(snapNumber(value, this.options), options);
  }
}

function numberOptions(input) {
  const { min, max, step } = input.options;
  const isInt = input.type === "INT";
  const stepSize = step ?? (isInt ? 1 : 0.01);
  const precision = isInt ? 0 : decimalsFor(input.options);
  // LiteGraph's number widget moves by step2 per arrow click and drag pixel.
  const round = isInt ? Math.max(1, Math.round(stepSize)) : input.options.round || stepSize;
  return { min, max, step2: stepSize, step: stepSize * 10, precision, round };
}

function widgetSpec(input, type, value, options) {
  return { type, name: input.name, value, options, tooltip: input.tooltip, y: 0 };
}

function makeNumber(node, input) {
  const options = numberOptions(input);
  const value = snapNumber(input.options.default ?? options.min ?? 0, options);
  return new SnappingNumberWidget(widgetSpec(input, "number", value, options), node);
}

function makeCombo(node, input) {
  const values = [...(input.choices ?? [])];
  const fallback = values[0] ?? "";
  const value = values.includes(input.options.default) ? input.options.default : fallback;
  return new FilteredComboWidget(widgetSpec(input, "combo", value, { values }), node);
}

function makeBoolean(node, input) {
  const options = { on: input.options.label_on ?? "true", off: input.options.label_off ?? "false" };
  return new BooleanWidget(widgetSpec(input, "toggle", Boolean(input.options.default), options), node);
}

function makeString(node, input, { textEditor }) {
  const value = String(input.options.default ?? "");
  if (input.options.multiline) {
    const spec = widgetSpec(input, "customtext", value, { multiline: true });
    return new MultilineTextWidget(spec, node, { editor: textEditor });
  }
  return new TextWidget(widgetSpec(input, "text", value, {}), node);
}

function makeControlWidget(node, target) {
  const spec = { type: "combo", name: CONTROL_WIDGET_NAME, value: "randomize", y: 0 };
  spec.options = { values: [...CONTROL_MODES] };
  spec.tooltip = "What happens to the value each time a prompt is queued";
  const widget = new ComboWidget(spec, node);
  widget.controlsWidget = target;
  return widget;
}

function makeUploadButton(node, target, { uploadImage, reportError }) {
  const spec = { type: "button", name: "upload", value: undefined, options: {}, y: 0 };
  spec.label = "choose file to upload";
  const button = new ButtonWidget(spec, node);
  // Not a value: left out of widgets_values, which then list exactly the inputs' values and controls.
  button.serialize = false;
  button.uploadsTo = target;
  button.callback = () => pickAndUpload({ node, target, uploadImage, reportError });
  return button;
}

function pickAndUpload({ node, target, uploadImage, reportError }) {
  const picker = document.createElement("input");
  picker.type = "file";
  picker.accept = "image/*";
  picker.addEventListener("change", () => {
    const file = picker.files?.[0];
    if (file) uploadInto({ node, target, file, uploadImage }).catch(reportError);
  });
  picker.click();
}

async function uploadInto({ node, target, file, uploadImage }) {
  const saved = await uploadImage(file);
  const name = saved.subfolder ? `${saved.subfolder}/${saved.name}` : saved.name;
  if (!target.options.values.includes(name)) target.options.values.push(name);
  target.value = name;
  node.setDirtyCanvas(true, true);
  node.onWidgetChanged?.(target.name, name, undefined, target);
}

const MAKERS = Object.freeze({
  INT: makeNumber,
  FLOAT: makeNumber,
  COMBO: makeCombo,
  BOOLEAN: makeBoolean,
  STRING: makeString,
});

/**
 * Creates the widgets for one widget input and adds them to the node: the value widget, then (when the
 * input asks) its control-after-generate combo. Returns the upload button an image combo asks for, for
 * the caller to add after every value widget (LiteGraph leaves a gap in widgets_values where a widget
 * is not serialized, so buttons go last), or null.
 * @param {object} services { textEditor, uploadImage, reportError }
 */
export function addInputWidgets(node, input, services) {
  const widget = MAKERS[input.type](node, input, services);
  node.addCustomWidget(widget);
  if (input.type === "INT" && input.options.control_after_generate) {
    node.addCustomWidget(makeControlWidget(node, widget));
  }
  return input.type === "COMBO" && input.options.image_upload ? makeUploadButton(node, widget, services) : null;
}

function nextValue(mode, widget, random) {
  const { min = 0, max = RANDOM_CEILING, step2 = 1 } = widget.options;
  switch (mode) {
    case "increment":
      return snapNumber(widget.value + step2, widget.options);
    case "decrement":
      return snapNumber(widget.value - step2, widget.options);
    case "randomize": {
      const ceiling = Math.min(max, RANDOM_CEILING);
      const steps = Math.floor((ceiling - min) / step2);
      return min + Math.floor(random() * (steps + 1)) * step2;
    }
    default:
      return widget.value;
  }
}

/**
 * Applies every control-after-generate widget in the graph (after a prompt was queued): fixed keeps the
 * value, increment/decrement move it by one step, randomize draws a new one. Skips linked values.
 * @returns {number} how many values changed
 */
export function applyControlAfterGenerate(nodes, { random = Math.random } = {}) {
  let changed = 0;
  for (const node of nodes) {
    for (const widget of node.widgets ?? []) {
      const target = widget.controlsWidget;
      if (!target || node.getSlotFromWidget(target)?.link != null) continue;
      const value = nextValue(widget.value, target, random);
      if (value !== target.value) {
        target.value = value;
        changed += 1;
      }
    }
  }
  return changed;
}
