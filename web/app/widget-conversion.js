// Turning a widget into an input socket and back. Every widget has a socket that a dropped wire can use
// (the widget then shows as fed by the wire); "converting" hides the widget and shows its socket as an
// ordinary input row. The node remembers which widgets it converted in its properties, which every
// workflow format keeps, so the choice survives saving, reopening and images' embedded graphs.

const PROPERTY = "converted_widgets";
const COLLAPSED_SIZE = () => [0, -4]; // arranges to zero height

function widgetInputs(node) {
  return node.constructor.nodeDef?.inputs.filter((input) => input.isWidget) ?? [];
}

function companions(node, widget) {
  return (node.widgets ?? []).filter((other) => other.controlsWidget === widget || other.uploadsTo === widget);
}

function setHidden(node, widget, hidden) {
  for (const target of [widget, ...companions(node, widget)]) {
    target.hidden = hidden;
    if (hidden) target.computeSize = COLLAPSED_SIZE;
    else if (target.computeSize === COLLAPSED_SIZE) delete target.computeSize;
  }
}

function refit(node) {
  const [width, height] = node.computeSize();
  node.setSize([Math.max(node.size[0], width), height]);
  node.setDirtyCanvas(true, true);
}

function convertedNames(node) {
  return new Set(node.properties?.[PROPERTY] ?? []);
}

function remember(node, names) {
  node.properties ??= {};
  if (names.size) node.properties[PROPERTY] = [...names];
  else delete node.properties[PROPERTY];
}

/** Shows `slot` as an input row (converted) or beside its widget. */
function placeSlot(slot, { converted }) {
  if (converted) {
    delete slot.widget;
    delete slot.pos; // LiteGraph placed it beside its widget; as a row it takes the default place
  } else {
    slot.widget = { name: slot.name };
  }
}

/** The widgets of `node` that can become inputs now. */
export function convertibleWidgets(node) {
  const converted = convertedNames(node);
  return widgetInputs(node)
    .filter((input) => !converted.has(input.name))
    .map((input) => node.widgets.find((widget) => widget.name === input.name))
    .filter(Boolean);
}

/** The inputs of `node` that were widgets and can go back. */
export function convertedInputs(node) {
  const converted = convertedNames(node);
  return (node.inputs ?? []).filter((slot) => converted.has(slot.name));
}

export function convertWidgetToInput(node, name) {
  const widget = node.widgets?.find((candidate) => candidate.name === name);
  const slot = node.inputs?.find((candidate) => candidate.name === name);
  if (!widget || !slot || convertedNames(node).has(name)) return false;
  placeSlot(slot, { converted: true });
  setHidden(node, widget, true);
  remember(node, convertedNames(node).add(name));
  refit(node);
  return true;
}

export function convertInputToWidget(node, name) {
  const index = node.inputs?.findIndex((slot) => slot.name === name) ?? -1;
  const widget = node.widgets?.find((candidate) => candidate.name === name);
  const converted = convertedNames(node);
  if (index < 0 || !widget || !converted.has(name)) return false;
  if (node.inputs[index].link != null) node.disconnectInput(index);
  placeSlot(node.inputs[index], { converted: false });
  setHidden(node, widget, false);
  converted.delete(name);
  remember(node, converted);
  refit(node);
  return true;
}

/**
 * After a node was configured from a file: give every widget its socket (files may store only the
 * sockets of linked widgets, as ComfyUI's older files do), and show converted widgets as inputs.
 */
export function syncNodeSockets(node) {
  const converted = convertedNames(node);
  for (const input of widgetInputs(node)) {
    let slot = node.inputs?.find((candidate) => candidate.name === input.name);
    if (!slot) slot = node.addInput(input.name, input.type, { label: input.name, widget: { name: input.name } });
    placeSlot(slot, { converted: converted.has(input.name) });
    const widget = node.widgets?.find((candidate) => candidate.name === input.name);
    if (widget) setHidden(node, widget, converted.has(input.name));
  }
}
